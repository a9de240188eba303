"""``edgeseg plugin``: build the TensorRT unpooling plugin and say where it is."""

from __future__ import annotations

import click


@click.group("plugin")
def plugin_group() -> None:
    """Build the TensorRT unpooling plugin (CUDA) that model.trt.onnx and engines need.

    \b
    Examples:
      edgeseg plugin build
      edgeseg plugin build --tensorrt-include /usr/include/aarch64-linux-gnu --cuda-arch 87
      edgeseg plugin path
    """


@plugin_group.command("build")
@click.option(
    "--tensorrt-include",
    type=click.Path(file_okay=False),
    help="Folder holding NvInfer.h.  [default: searched]",
)
@click.option(
    "--tensorrt-lib",
    type=click.Path(file_okay=False),
    help="Folder holding libnvinfer.so (checked against the headers' version).",
)
@click.option(
    "--cuda-arch",
    help="CUDA architectures, e.g. 87 (Jetson Orin) or 86;89.  [default: this machine's GPU]",
)
@click.option(
    "--cxx-standard",
    type=click.Choice(["17", "20"]),
    help="C++ standard.  [default: 17; 20 for TensorRT 11.5 and later]",
)
def plugin_build_command(
    tensorrt_include: str | None,
    tensorrt_lib: str | None,
    cuda_arch: str | None,
    cxx_standard: str | None,
) -> None:
    """Compile the plugin with CMake against the installed TensorRT and CUDA.

    \b
    Examples:
      edgeseg plugin build
      edgeseg plugin build --tensorrt-include /usr/include/aarch64-linux-gnu --cuda-arch 87
    """
    from edgeseg.export.plugin import build_plugin

    path = build_plugin(
        tensorrt_include=tensorrt_include,
        tensorrt_lib=tensorrt_lib,
        cuda_arch=cuda_arch,
        cxx_standard=int(cxx_standard) if cxx_standard else None,
    )
    click.echo(f"built {path}")


@plugin_group.command("path")
def plugin_path_command() -> None:
    """Print where the plugin library is (or will be) installed.

    \b
    Example:
      edgeseg plugin path
    """
    from edgeseg.backends.tensorrt import plugin_library_path

    path = plugin_library_path()
    click.echo(str(path))
    if not path.is_file():
        click.echo("(not built yet: run edgeseg plugin build)", err=True)
