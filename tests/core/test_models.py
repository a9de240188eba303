"""The SegNet family: shapes at odd sizes, parameter counts, unpooling semantics, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from unpool_reference import assert_bit_equal, decoder_for, make_prepool, naive_unpool

from edgeseg.errors import EdgesegError
from edgeseg.models import count_parameters, create_model
from edgeseg.models.blocks import MaxPool2x2, MaxUnpool2x2


def test_segnet_parameter_count_matches_the_paper_definition() -> None:
    # 13 VGG16 convs with BN, mirrored decoder, 3x3 classifier to 11 classes, conv biases.
    assert count_parameters(create_model("segnet", 11)) == 29_449_355


def test_variant_parameter_counts() -> None:
    assert count_parameters(create_model("segnet", 11, width=0.25)) == 1_846_571
    assert count_parameters(create_model("segnet", 11, width=0.5)) == 7_370_315
    # 4 x (7x7 conv 64 + BN) encoders, 4 decoders, 1x1 classifier.
    basic = 3 * 64 * 49 + 64 + 7 * (64 * 64 * 49 + 64) + 8 * 2 * 64 + 64 * 11 + 11
    assert count_parameters(create_model("segnet-basic", 11)) == basic


@pytest.mark.parametrize(
    ("name", "options", "hw"),
    [
        ("segnet", {"width": 0.25}, (45, 67)),
        ("segnet", {"width": 0.25}, (360, 480)),
        ("segnet", {"width": 0.125}, (33, 35)),
        ("segnet-basic", {}, (37, 21)),
        ("segnet-basic", {"channels": 16}, (61, 93)),
    ],
)
def test_output_has_input_size_at_odd_sizes(name: str, options: dict, hw: tuple[int, int]) -> None:
    model = create_model(name, 5, **options).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, *hw))
    assert out.shape == (2, 5, *hw)


def test_segnet_pooling_sizes_at_360x480() -> None:
    model = create_model("segnet", 11, width=0.25).eval()
    sizes = []
    for encoder in model.encoders:
        encoder.pool.register_forward_hook(lambda m, i, o: sizes.append(tuple(o[0].shape[-2:])))
    with torch.no_grad():
        model(torch.zeros(1, 3, 360, 480))
    assert sizes == [(180, 240), (90, 120), (45, 60), (22, 30), (11, 15)]


def test_unpool_keeps_first_maximum_on_ties_hand_made() -> None:
    # One 3x5 plane: odd height and width (last row and column are dropped by pooling).
    prepool = torch.tensor(
        [[[[0.0, 0.0, 2.0, 2.0, 9.0], [0.0, 0.0, 1.0, 2.0, 9.0], [7.0, 7.0, 7.0, 7.0, 7.0]]]]
    )
    _, indices = MaxPool2x2()(prepool)
    decoder = torch.tensor([[[[5.0, 6.0]]]])
    out = MaxUnpool2x2()(decoder, indices, prepool)
    expected = torch.tensor(
        [[[[5.0, 0.0, 6.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]]]
    )
    assert torch.equal(out, expected)
    assert_bit_equal(out, naive_unpool(decoder, prepool))


@pytest.mark.parametrize("hw", [(17, 11), (6, 8), (2, 3), (3, 2)])
def test_unpool_matches_naive_reference_on_tie_heavy_tensors(hw: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(0)
    prepool = F.relu(torch.randint(-2, 2, (2, 3, *hw), generator=generator).float())
    _, indices = MaxPool2x2()(prepool)
    decoder = torch.randn(2, 3, hw[0] // 2, hw[1] // 2, generator=generator)
    out = MaxUnpool2x2()(decoder, indices, prepool)
    assert out.shape == prepool.shape
    assert_bit_equal(out, naive_unpool(decoder, prepool))


@pytest.mark.parametrize("hw", [(17, 11), (3, 2)])
def test_unpool_follows_the_reference_nan_rule(hw: tuple[int, int]) -> None:
    # NaN, +-inf and signed zeros: a NaN wins its window, and the decoder's bits are copied.
    generator = torch.Generator().manual_seed(1)
    prepool = make_prepool("specials", (2, 3, *hw), generator)
    decoder = decoder_for(prepool, generator)
    _, indices = MaxPool2x2()(prepool)
    assert_bit_equal(MaxUnpool2x2()(decoder, indices, prepool), naive_unpool(decoder, prepool))


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(EdgesegError, match="segnet, segnet-basic"):
        create_model("unet", 11)


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(EdgesegError, match="valid: in_channels, width"):
        create_model("segnet", 11, depth=3)


def test_vgg_init_without_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(EdgesegError, match="not found"):
        create_model("segnet", 11, vgg_weights=str(tmp_path / "vgg16_bn.pth"))


def test_vgg_init_copies_encoder_weights(tmp_path) -> None:
    # A file in torchvision's vgg16_bn layout (features.<i> conv / BN indices), made here.
    segnet = create_model("segnet", 11)
    convs = [m for m in segnet.encoders.modules() if isinstance(m, torch.nn.Conv2d)]
    state, index = {}, 0
    for conv in convs:
        state[f"features.{index}.weight"] = torch.randn_like(conv.weight)
        state[f"features.{index}.bias"] = torch.randn_like(conv.bias)
        for name in ("weight", "bias", "running_mean", "running_var"):
            state[f"features.{index + 1}.{name}"] = torch.rand(conv.out_channels)
        state[f"features.{index + 1}.num_batches_tracked"] = torch.tensor(0)
        index += 3 if index not in (3, 10, 20, 30) else 4  # conv, bn, relu (+ pool)
    path = tmp_path / "vgg16_bn.pth"
    torch.save(state, path)
    model = create_model("segnet", 11, vgg_weights=str(path))
    first = [m for m in model.encoders.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert torch.equal(first.weight, state[f"features.{index - 3}.weight"])
    with pytest.raises(EdgesegError, match="--width 1"):
        create_model("segnet", 11, width=0.5, vgg_weights=str(path))
