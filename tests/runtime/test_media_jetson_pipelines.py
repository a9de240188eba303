"""The NVIDIA-element pipelines, which cannot run here, checked as strings against jetson-utils'
documented forms (codec/gstDecoder.cpp, gstEncoder.cpp, gstCamera.cpp in dusty-nv/jetson-utils):

- gstDecoder, file: ``filesrc location=X ! qtdemux ! queue ! h264parse ! nvv4l2decoder
  name=decoder enable-max-performance=1 ! video/x-raw(memory:NVMM) ! nvvidconv name=vidconv !
  video/x-raw ! appsink name=mysink``; rtsp: ``rtspsrc location=URI latency=N ! queue !
  rtph264depay ! h264parse ! ...  appsink name=mysink sync=false``.
- gstEncoder (V4L2 codec): ``nvvidconv name=vidconv ! video/x-raw(memory:NVMM) ! nvv4l2h264enc
  name=encoder bitrate=B insert-sps-pps=1 insert-vui=1 idrinterval=30 maxperf-enable=1 !
  video/x-h264 ! rtph264pay config-interval=1 ! udpsink host=H port=P auto-multicast=true``;
  CPU: ``x264enc name=encoder bitrate=K speed-preset=ultrafast tune=zerolatency key-int-max=30
  insert-vui=1``.
- gstCamera, MJPEG: ``v4l2src device=D do-timestamp=true ! image/jpeg, width=(int)W,
  height=(int)H ! nvjpegdec name=decoder ! video/x-raw ! ...``.

edgeseg's forms differ only where OpenCV needs it: the appsink is unnamed (OpenCV 4.6 does not
find an appsink named otherwise) and nvvidconv's output caps ask for BGRx.
"""

from __future__ import annotations

from edgeseg.runtime import gstreamer as gst


def test_file_decode_is_gstdecoders_form_with_bgrx_for_opencv() -> None:
    assert gst.nv_decode_pipeline("/data/clip.mp4", rtsp=False) == (
        "filesrc location=/data/clip.mp4 ! qtdemux ! queue ! h264parse ! nvv4l2decoder "
        "name=decoder enable-max-performance=1 ! video/x-raw(memory:NVMM) ! nvvidconv "
        "name=vidconv ! video/x-raw, format=(string)BGRx ! appsink"
    )
    mkv = gst.nv_decode_pipeline("my clip.mkv", rtsp=False, codec="h265")
    assert mkv.startswith('filesrc location="my clip.mkv" ! matroskademux ! queue ! h265parse')


def test_rtsp_decode_is_gstdecoders_form() -> None:
    pipeline = gst.nv_decode_pipeline("rtsp://cam/live", rtsp=True)
    assert pipeline == (
        "rtspsrc location=rtsp://cam/live latency=200 ! queue ! rtph264depay ! h264parse ! "
        "nvv4l2decoder name=decoder enable-max-performance=1 ! video/x-raw(memory:NVMM) ! "
        "nvvidconv name=vidconv ! video/x-raw, format=(string)BGRx ! "
        "appsink drop=true max-buffers=1 sync=false"
    )
    assert "videoconvert" not in pipeline


def test_mjpeg_camera_decodes_in_nvjpegdec() -> None:
    pipeline = gst.nv_mjpeg_camera_pipeline("/dev/video0", (720, 1280), 30, flip_method=2)
    assert pipeline == (
        "v4l2src device=/dev/video0 do-timestamp=true ! image/jpeg, width=(int)1280, "
        "height=(int)720, framerate=(fraction)30/1 ! nvjpegdec name=decoder ! video/x-raw ! "
        "nvvidconv name=vidconv flip-method=2 ! video/x-raw, format=(string)BGRx ! "
        "appsink drop=true max-buffers=1 sync=false"
    )


def test_hardware_encoder_is_gstencoders_v4l2_form() -> None:
    stream = gst.h264_encoder(4000, network=True, hardware=True)
    assert stream.endswith(
        "nvvidconv name=vidconv ! video/x-raw(memory:NVMM), format=(string)NV12 ! nvv4l2h264enc "
        "name=encoder bitrate=4000000 insert-sps-pps=1 insert-vui=1 idrinterval=30 "
        "maxperf-enable=1 ! video/x-h264"
    )
    rtp = gst.rtp_writer_pipeline("192.168.1.20", 5000, stream)
    assert rtp.endswith(
        "video/x-h264 ! rtph264pay config-interval=1 pt=96 ! udpsink host=192.168.1.20 "
        "port=5000 auto-multicast=true sync=false async=false"
    )
    file = gst.h264_encoder(None, network=False, hardware=True)
    assert "bitrate" not in file and "idrinterval" not in file and "maxperf-enable=1" in file


def test_software_encoder_is_gstencoders_cpu_form() -> None:
    assert gst.h264_encoder(2500, network=True, hardware=False) == (
        "videoconvert ! video/x-raw, format=(string)I420 ! x264enc name=encoder bitrate=2500 "
        "speed-preset=ultrafast tune=zerolatency key-int-max=30 insert-vui=1 ! "
        "video/x-h264, profile=(string)high"
    )
    mp4 = gst.file_writer_pipeline("/tmp/o.mp4", ".mp4", "x264enc")
    assert mp4 == (
        "appsrc ! video/x-raw, format=(string)BGR ! x264enc ! h264parse ! mp4mux faststart=true "
        "! filesink location=/tmp/o.mp4"
    )


def test_without_nvidia_elements_this_machine_takes_the_cpu_path() -> None:
    if all(gst.has_element(e) for e in gst.NVIDIA_ELEMENTS):
        return  # a Jetson: the hardware path is the right answer there
    assert not gst.on_jetson()
