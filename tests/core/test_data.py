"""Dataset layouts, file reading, validation errors, augmentation and the PyTorch dataset."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from synthetic import class_colours, make_generic
from torch.utils.data import DataLoader

from edgeseg.card import ModelCard
from edgeseg.data import (
    CAMVID,
    PAD_LABEL,
    AugmentConfig,
    DatasetSpec,
    Sample,
    SegmentationDataset,
    collate_eval,
    image_size,
    load_split,
    read_image,
    read_mask,
    validate_samples,
)
from edgeseg.data.augment import color_jitter, scale_crop_flip
from edgeseg.errors import EdgesegError
from edgeseg.preprocess import preprocess

CAMVID_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "camvid"
NO_JITTER = dict(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0)


def card_for(spec: DatasetSpec, input_hw: tuple[int, int] = (64, 64)) -> ModelCard:
    return ModelCard(
        architecture="segnet",
        num_classes=spec.num_classes,
        class_names=spec.class_names,
        palette=spec.palette,
        input_hw=input_hw,
        ignore_index=spec.ignore_index,
    )


# --- layouts -----------------------------------------------------------------------------------


def test_camvid_layout_is_detected(camvid_like: Path) -> None:
    spec, train = load_split(camvid_like, "train")
    assert spec is CAMVID and spec.num_classes == 11 and spec.ignore_index == 11
    assert len(train) == 8
    assert [s.image.name for s in train] == sorted(s.image.name for s in train)
    assert all(s.mask == camvid_like / "trainannot" / s.image.name for s in train)
    assert len(load_split(camvid_like, "val")[1]) == 4
    assert len(load_split(camvid_like, "test")[1]) == 2
    assert CAMVID.license.startswith("research use")
    assert CAMVID.palette[3] == (128, 64, 128) and CAMVID.class_names[3] == "Road"


@pytest.mark.skipif(not CAMVID_ROOT.is_dir(), reason=f"CamVid not found at {CAMVID_ROOT}")
def test_real_camvid_splits() -> None:
    spec, train = load_split(CAMVID_ROOT, "train")
    _, val = load_split(CAMVID_ROOT, "val")
    assert (len(train), len(val)) == (367, 101)
    validate_samples(train[:20], spec)
    mask = read_mask(train[0].mask, spec)
    assert mask.shape == (360, 480) and mask.dtype == np.uint8 and mask.max() <= 11
    with pytest.raises(EdgesegError, match="available: train, val"):
        load_split(CAMVID_ROOT, "test")


@pytest.mark.parametrize("layout", ["dirs", "lists", "random"])
def test_generic_layouts(tmp_path: Path, layout: str) -> None:
    root = make_generic(tmp_path / layout, layout=layout, n=10, seed=4)
    spec, train = load_split(root, "train")
    _, val = load_split(root, "val")
    assert spec.name == "synthetic" and spec.class_names == ("class0", "class1", "class2")
    assert spec.mask_format == "index" and spec.ignore_index is None
    assert (len(train), len(val)) == (7, 3)
    assert not {s.image for s in train} & {s.image for s in val}
    for sample in train + val:
        assert sample.image.suffix == ".jpg" and sample.mask.suffix == ".png"
        assert sample.image.stem == sample.mask.stem
    validate_samples(train + val, spec)


def test_random_split_is_seeded_and_stable(tmp_path: Path) -> None:
    root = make_generic(tmp_path / "r", layout="random", n=20, seed=0)
    config = yaml.safe_load((root / "dataset.yaml").read_text())
    del config["seed"]  # the split now follows load_split's seed
    (root / "dataset.yaml").write_text(yaml.safe_dump(config))
    first = load_split(root, "val", seed=1)[1]
    assert first == load_split(root, "val", seed=1)[1]
    assert first != load_split(root, "val", seed=2)[1]
    assert len(first) == 6 and len(load_split(root, "train", seed=1)[1]) == 14
    config["seed"] = 7  # a seed in dataset.yaml wins over the caller's
    (root / "dataset.yaml").write_text(yaml.safe_dump(config))
    assert load_split(root, "val", seed=1)[1] == load_split(root, "val", seed=2)[1]


def test_list_file_names_a_missing_image(generic_lists: Path) -> None:
    (generic_lists / "val.txt").write_text("img007\nnot_there\n")
    with pytest.raises(EdgesegError, match=r"val.txt line 2: no image not_there"):
        load_split(generic_lists, "val")


def test_binary_crack_masks_with_suffix(crack_like: Path) -> None:
    spec, train = load_split(crack_like, "train")
    assert spec.mask_format == "binary" and spec.num_classes == 2
    assert all(s.mask.name == f"{s.image.stem}_mask.jpg" for s in train)
    mask = read_mask(train[0].mask, spec)
    assert set(np.unique(mask)) == {0, 1}  # JPEG noise is thresholded away
    assert 0 < mask.mean() < 0.3


def test_images_and_suffixed_masks_in_one_folder(crack_like: Path) -> None:
    train = crack_like / "train"
    for mask in (train / "masks").iterdir():
        mask.rename(train / "images" / mask.name)
    config = yaml.safe_load((crack_like / "dataset.yaml").read_text())
    config["splits"]["train"]["masks"] = "train/images"
    (crack_like / "dataset.yaml").write_text(yaml.safe_dump(config))
    _, samples = load_split(crack_like, "train")
    assert len(samples) == 7
    assert all(s.mask == train / "images" / f"{s.image.stem}_mask.jpg" for s in samples)


def test_rgb_masks_map_through_the_palette(tmp_path: Path) -> None:
    rgb_root = make_generic(tmp_path / "rgb", layout="lists", mask_format="rgb", seed=5)
    index_root = make_generic(tmp_path / "idx", layout="lists", mask_format="index", seed=5)
    rgb_spec, rgb_samples = load_split(rgb_root, "train")
    index_spec, index_samples = load_split(index_root, "train")
    assert rgb_spec.palette == tuple(tuple(int(v) for v in c) for c in class_colours(3))
    for rgb_sample, index_sample in zip(rgb_samples, index_samples, strict=True):
        np.testing.assert_array_equal(
            read_mask(rgb_sample.mask, rgb_spec), read_mask(index_sample.mask, index_spec)
        )


def test_rgb_ignore_color(tmp_path: Path) -> None:
    spec = DatasetSpec(
        "x", ("a", "b"), ((255, 0, 0), (0, 255, 0)), 7, "rgb", ignore_color=(0, 0, 0)
    )
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 0]]], np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), rgb[..., ::-1])
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", spec), [[0, 1, 7]])


# --- errors: one line, naming the file -----------------------------------------------------------


def test_missing_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match="nowhere"):
        load_split(tmp_path / "nowhere", "train")


def test_root_without_any_layout(tmp_path: Path) -> None:
    with pytest.raises(EdgesegError, match=r"dataset.yaml nor CamVid folders"):
        load_split(tmp_path, "train")


def test_unknown_split_lists_the_available_ones(camvid_like: Path, generic_lists: Path) -> None:
    with pytest.raises(EdgesegError, match=r"'tset'.*available: test, train, val"):
        load_split(camvid_like, "tset")
    with pytest.raises(EdgesegError, match=r"'test'.*available: train, val"):
        load_split(generic_lists, "test")


def test_split_without_images_names_the_folder(camvid_like: Path) -> None:
    for path in (camvid_like / "val").iterdir():
        path.unlink()
    with pytest.raises(EdgesegError, match=r"no images in .*val"):
        load_split(camvid_like, "val")


def test_image_without_mask_is_named(camvid_like: Path) -> None:
    (camvid_like / "trainannot" / "seqt_00003.png").unlink()
    with pytest.raises(EdgesegError, match=r"seqt_00003.png has no mask"):
        load_split(camvid_like, "train")


def test_validate_names_a_missing_mask(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    samples[2].mask.unlink()
    with pytest.raises(EdgesegError, match=rf"mask .*{samples[2].mask.name} .*not found"):
        validate_samples(samples, spec)


def test_validate_names_a_size_mismatch(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    cv2.imwrite(str(samples[1].mask), np.zeros((30, 40), np.uint8))
    with pytest.raises(EdgesegError) as caught:
        validate_samples(samples, spec)
    message = str(caught.value)
    assert samples[1].mask.name in message and "40x30" in message and "80x60" in message
    assert "\n" not in message


def test_validate_reads_jpeg_headers(crack_like: Path) -> None:
    spec, samples = load_split(crack_like, "train")
    validate_samples(samples, spec)
    cv2.imwrite(str(samples[0].mask), np.zeros((41, 56), np.uint8))
    with pytest.raises(EdgesegError, match=rf"{samples[0].mask.name} is 56x41"):
        validate_samples(samples, spec)


def test_image_size_reads_headers(crack_like: Path, camvid_like: Path, tmp_path: Path) -> None:
    paths = [*sorted((crack_like / "train" / "images").iterdir())[:2]]
    paths += sorted((camvid_like / "train").iterdir())[:2]
    cv2.imwrite(str(tmp_path / "x.bmp"), np.zeros((13, 17, 3), np.uint8))
    paths.append(tmp_path / "x.bmp")
    for path in paths:
        assert image_size(path) == cv2.imread(str(path)).shape[:2], path


def test_label_out_of_range_names_file_and_value(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    mask = cv2.imread(str(samples[0].mask), cv2.IMREAD_UNCHANGED)
    mask[0, 0], mask[0, 1] = 12, 200
    cv2.imwrite(str(samples[0].mask), mask)
    with pytest.raises(EdgesegError, match=rf"{samples[0].mask.name} has label value 12, 200"):
        read_mask(samples[0].mask, spec)
    dataset = SegmentationDataset(samples, spec, card_for(spec), train=True)
    with pytest.raises(EdgesegError, match=r"outside 0\.\.10 or 11"):
        dataset[0]


def test_colour_mask_as_index_is_refused(tmp_path: Path) -> None:
    spec = DatasetSpec("x", ("a", "b"), ((0, 0, 0), (255, 0, 0)), None, "index")
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[[0, 0, 255], [0, 0, 0]]], np.uint8))
    with pytest.raises(EdgesegError, match=r"m.png holds colours.*mask_format: rgb"):
        read_mask(tmp_path / "m.png", spec)
    grey3 = np.array([[[1, 1, 1], [0, 0, 0]]], np.uint8)  # equal channels: accepted
    cv2.imwrite(str(tmp_path / "g.png"), grey3)
    np.testing.assert_array_equal(read_mask(tmp_path / "g.png", spec), [[1, 0]])


def test_unknown_mask_colour_is_named(tmp_path: Path) -> None:
    spec = DatasetSpec("x", ("a", "b"), ((0, 0, 0), (255, 0, 0)), None, "rgb")
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[[0, 0, 255], [3, 2, 1]]], np.uint8))
    with pytest.raises(EdgesegError, match=r"m.png has colour RGB \[1, 2, 3\]"):
        read_mask(tmp_path / "m.png", spec)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(EdgesegError, match=r"broken\.png is not an image"):
        read_image(tmp_path / "broken.png")
    with pytest.raises(EdgesegError, match=r"absent\.png not found"):
        read_image(tmp_path / "absent.png")


def test_read_image_is_bgr_uint8(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 7), 9, np.uint8))
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (5, 7, 3) and image.dtype == np.uint8 and image.max() == 9
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 200  # blue
    cv2.imwrite(str(tmp_path / "blue.png"), bgr)
    assert read_image(tmp_path / "blue.png")[0, 0].tolist() == [200, 0, 0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mask_format": "palette"}, "mask_format 'palette' is not one of index, rgb, binary"),
        ({"clases": ["a"]}, "unknown key clases; valid keys:"),
        ({"palette": [[0, 0, 0]]}, "1 palette colours for 3 classes"),
        ({"classes": []}, "classes must be a non-empty list"),
        ({"random_split": {"val": 0.2}}, "exactly one of splits: or random_split:"),
    ],
)
def test_bad_dataset_yaml_is_named(generic_lists: Path, change: dict, message: str) -> None:
    config = yaml.safe_load((generic_lists / "dataset.yaml").read_text())
    config.update(change)
    (generic_lists / "dataset.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(EdgesegError, match=r"dataset\.yaml") as caught:
        load_split(generic_lists, "train")
    assert message in str(caught.value)


def test_binary_needs_two_classes() -> None:
    with pytest.raises(EdgesegError, match="binary needs exactly 2 classes"):
        DatasetSpec("x", ("a", "b", "c"), ((0, 0, 0),) * 3, None, "binary")


# --- augmentation ----------------------------------------------------------------------------


def striped(hw: tuple[int, int], classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertical stripes of classes 0..classes-1, the image coloured by class (BGR), colours."""
    height, width = hw
    labels = np.tile((np.arange(width) * classes // width).astype(np.uint8), (height, 1))
    labels[: height // 3] = (labels[: height // 3] + 1) % classes  # horizontal structure too
    colours = (class_colours(classes)[:, ::-1]).copy()
    return colours[labels], labels, colours


def test_scale_crop_flip_keeps_image_and_mask_aligned() -> None:
    image, labels, colours = striped((45, 70), 5)
    config = AugmentConfig(scale_min=0.6, scale_max=1.8, **NO_JITTER)
    for seed in range(20):
        rng = np.random.default_rng(seed)
        out_image, out_mask = scale_crop_flip(image, labels, (32, 48), config, rng, (0, 0, 0), 255)
        assert out_image.shape == (32, 48, 3) and out_mask.shape == (32, 48)
        inside = out_mask != 255
        # Away from class edges (where bilinear blends neighbours) the colour is the label's.
        eroded = np.ones_like(inside)
        for c in range(5):
            region = (out_mask == c).astype(np.uint8)
            kernel = np.ones((3, 3), np.uint8)
            core = cv2.erode(region, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0)
            eroded &= (region == 0) | (core > 0)
        check = inside & eroded
        assert check.sum() > 100
        np.testing.assert_array_equal(out_image[check], colours[out_mask[check]])
        assert np.all(out_image[~inside] == 0)


def test_flip_at_scale_one_is_a_mirror() -> None:
    image, labels, _ = striped((32, 48), 4)
    config = AugmentConfig(scale_min=1.0, scale_max=1.0, **NO_JITTER)
    flipped = 0
    for seed in range(12):
        out_image, out_mask = scale_crop_flip(
            image, labels, (32, 48), config, np.random.default_rng(seed), (0, 0, 0), 255
        )
        if np.array_equal(out_mask, labels):
            np.testing.assert_array_equal(out_image, image)
        else:
            np.testing.assert_array_equal(out_mask, labels[:, ::-1])
            np.testing.assert_array_equal(out_image, image[:, ::-1])
            flipped += 1
    assert 0 < flipped < 12


def test_scale_follows_the_cv2_resize_pixel_convention() -> None:
    # Cover scale 2 with a scale factor of exactly 1: no crop, no padding, only the resize.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, (16, 24), dtype=np.uint8)
    config = AugmentConfig(scale_min=1.0, scale_max=1.0, hflip=False, **NO_JITTER)
    out_image, out_mask = scale_crop_flip(image, labels, (32, 48), config, rng, (0, 0, 0), 255)
    expected = cv2.resize(image, (48, 32), interpolation=cv2.INTER_LINEAR)
    assert np.abs(out_image.astype(int) - expected).max() <= 1
    np.testing.assert_array_equal(
        out_mask, cv2.resize(labels, (48, 32), interpolation=cv2.INTER_NEAREST_EXACT)
    )


def test_color_jitter() -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(color_jitter(image, AugmentConfig(**NO_JITTER), rng), image)
    flat = np.full((4, 4, 3), 100, np.uint8)
    outs = [
        color_jitter(flat, AugmentConfig(**{**NO_JITTER, "brightness": 0.2}), rng)
        for _ in range(20)
    ]
    values = {int(o[0, 0, 0]) for o in outs}
    assert len(values) > 5 and min(values) >= 80 and max(values) <= 120
    grey = np.full((4, 4, 3), 90, np.uint8)  # no hue, no saturation: only brightness can change it
    for _ in range(5):
        out = color_jitter(grey, AugmentConfig(brightness=0.0), rng)
        assert np.all(out == out[0, 0, 0])


def test_augment_config_rejects_bad_values() -> None:
    with pytest.raises(EdgesegError, match="scale range"):
        AugmentConfig(scale_min=1.5, scale_max=1.0)
    with pytest.raises(EdgesegError, match="brightness"):
        AugmentConfig(brightness=1.5)


# --- the PyTorch dataset ---------------------------------------------------------------------


def test_eval_items_use_preprocess_and_native_masks(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "val")
    card = card_for(spec, (64, 64))
    dataset = SegmentationDataset(samples, spec, card, train=False)
    image, mask = dataset[1]
    expected = preprocess(read_image(samples[1].image), card)
    assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
    assert torch.equal(image, torch.from_numpy(expected))
    assert mask.dtype == torch.int64 and mask.shape == (60, 80)
    np.testing.assert_array_equal(mask.numpy(), read_mask(samples[1].mask, spec))
    images, masks = collate_eval([dataset[0], dataset[1]])
    assert images.shape == (2, 3, 64, 64) and [m.shape for m in masks] == [(60, 80), (60, 80)]


def test_collate_eval_keeps_masks_of_different_sizes() -> None:
    batch = [(torch.zeros(3, 8, 8), torch.zeros(5, 6)), (torch.ones(3, 8, 8), torch.zeros(7, 9))]
    images, masks = collate_eval(batch)
    assert images.shape == (2, 3, 8, 8) and [tuple(m.shape) for m in masks] == [(5, 6), (7, 9)]


def test_train_items_and_padding_with_ignore_index(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    card = card_for(spec, (64, 64))
    small = AugmentConfig(scale_min=0.5, scale_max=0.5, **NO_JITTER)  # the crop exceeds the image
    dataset = SegmentationDataset(samples, spec, card, train=True, augment=small)
    torch.manual_seed(0)
    image, mask = dataset[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert mask.shape == (64, 64) and mask.dtype == torch.int64
    # Scaled to 32x43 (cover scale 64/60, times 0.5) in a 64x64 crop: 66 % padding.
    assert (mask == 11).float().mean() >= 0.66
    # The padding colour is the card's mean, so it normalises to ~0 (uint8 rounding aside).
    fill = (image.abs() < 0.02).all(dim=0)
    assert fill.float().mean() >= 0.66 and bool((mask[fill] == 11).all())
    assert set(torch.unique(mask).tolist()) <= set(range(12))


def test_padding_without_ignore_index_uses_pad_label(generic_lists: Path) -> None:
    spec, samples = load_split(generic_lists, "train")
    assert spec.ignore_index is None and spec.pad_label == PAD_LABEL == 255
    small = AugmentConfig(scale_min=0.5, scale_max=0.5)
    dataset = SegmentationDataset(samples, spec, card_for(spec), train=True, augment=small)
    torch.manual_seed(0)
    _, mask = dataset[0]
    assert set(torch.unique(mask).tolist()) - {0, 1, 2} == {255}


def test_training_items_are_reproducible_and_vary(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    dataset = SegmentationDataset(samples, spec, card_for(spec), train=True)

    def epoch(workers: int, seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(
            dataset, batch_size=4, shuffle=True, num_workers=workers, generator=generator
        )
        return [images for images, _ in loader]

    for workers in (0, 2):
        first, again = epoch(workers, 5), epoch(workers, 5)
        assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True)), workers
        assert not torch.equal(first[0], epoch(workers, 6)[0])
    torch.manual_seed(0)
    a, b = dataset[0][0], dataset[0][0]
    assert not torch.equal(a, b)  # the same image augments differently on each draw


def test_cache_decodes_once_and_matches(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "val")
    card = card_for(spec)
    plain = SegmentationDataset(samples, spec, card, train=False)
    expected = [plain[i] for i in range(len(plain))]
    cached = SegmentationDataset(samples, spec, card, train=False, cache=True)
    for sample in samples:
        sample.image.unlink()
    for i, (image, mask) in enumerate(expected):
        assert torch.equal(cached[i][0], image) and torch.equal(cached[i][1], mask)


def test_dataset_refuses_a_card_with_other_classes(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    other = DatasetSpec("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), None, "index")
    with pytest.raises(EdgesegError, match="card has 2 classes but dataset 'camvid' has 11"):
        SegmentationDataset(samples, spec, card_for(other), train=True)


def test_dataset_names_an_image_mask_size_mismatch(camvid_like: Path) -> None:
    spec, samples = load_split(camvid_like, "train")
    cv2.imwrite(str(samples[0].mask), np.zeros((10, 10), np.uint8))
    dataset = SegmentationDataset([Sample(samples[0].image, samples[0].mask)], spec,
                                  card_for(spec), train=False)  # fmt: skip
    with pytest.raises(EdgesegError, match=rf"{samples[0].mask.name} is 10x10"):
        dataset[0]
