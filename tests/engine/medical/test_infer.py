"""segment(): windowing as trained, resampling, 2.5D, tiling, labels, bad input, progress, GPU."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import Cancelled, ModelError, WeightsError
from engine.items import LabelSet, Photo, Volume
from engine.jobs import CancelToken
from engine.medical.checkpoint import IntensityWindow, MCANetMeta, load_mcanet_checkpoint
from engine.medical.infer import InferenceOptions, forward_slices, segment
from tests.engine.medical._tiny import CT_META, sigmoid_classes, tiny_checkpoint, tiny_model

PLAIN = InferenceOptions(fused=False, device="cpu")
FUSED = InferenceOptions(fused=True, device="cpu")


def _ct_volume(depth: int = 4, h: int = 40, w: int = 48, *, spacing: tuple[float, float, float] = (1.0, 1.0, 2.5),
               seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    arr = rng.normal(40, 150, size=(depth, h, w))
    arr[:, h // 4: h // 2, w // 4: w // 2] += 300  # a bright blob, a dark one
    arr[:, h // 2:, w // 2:] -= 300
    return Volume(arr.astype(np.int16), spacing=spacing, modality="CT")


def _manual_logits(model: torch.nn.Module, meta: MCANetMeta, slices: np.ndarray) -> torch.Tensor:
    """What the model must see: CT window 40/400 -> [0,1], grey repeated over 3 channels,
    (255 v - mean) / std, zero-padded to a multiple of 32 after normalisation, cropped back."""
    lo, hi = meta.window.center - meta.window.width / 2, meta.window.center + meta.window.width / 2
    v = np.clip((slices.astype(np.float64) - lo) / (hi - lo), 0, 1)
    x = np.repeat(v[:, None], 3, axis=1)
    mean = np.array(meta.mean).reshape(1, 3, 1, 1)
    std = np.array(meta.std).reshape(1, 3, 1, 1)
    x = torch.from_numpy((255 * x - mean) / std).float()
    h, w = x.shape[-2:]
    xp = torch.nn.functional.pad(x, (0, -w % 32, 0, -h % 32))
    with torch.no_grad():
        return model(xp)[..., :h, :w]


def test_volume_equals_the_trained_preprocessing_slice_by_slice(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    vol = _ct_volume()
    result = segment(vol, path, options=PLAIN)
    model, meta = load_mcanet_checkpoint(path)
    logits = _manual_logits(model, meta, vol.array)
    expected = logits.argmax(1).numpy()  # channel c -> class id c (liver 1, spleen 2)
    assert result.label_map.shape == vol.shape and result.label_map.data.dtype == np.uint8
    np.testing.assert_array_equal(result.label_map.data, expected)
    assert set(result.label_map.present_ids()) == {1, 2}
    probs = torch.softmax(logits, 1)[:, 1:].numpy().transpose(1, 0, 2, 3)
    assert result.probabilities is not None and result.probabilities.dtype == np.uint8
    assert result.probabilities.shape == (2,) + vol.shape
    assert np.abs(result.probabilities / 255.0 - probs).max() <= 0.5 / 255 + 1e-6
    assert result.class_ids == (1, 2)


def test_fused_network_gives_the_same_segmentation(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    vol = _ct_volume()
    plain = segment(vol, path, options=PLAIN)
    fused = segment(vol, path, options=FUSED)
    assert (plain.label_map.data == fused.label_map.data).mean() > 0.999
    assert np.abs(plain.probabilities.astype(int) - fused.probabilities).max() <= 1


def test_mr_percentile_window_and_label_ids_from_the_project(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, modality="MR", window=IntensityWindow("percentile", low=1.0, high=99.0))
    rng = np.random.default_rng(1)
    vol = Volume((rng.gamma(2.0, 300.0, size=(3, 32, 32))).astype(np.float32), modality="MR")
    labels = LabelSet()
    labels.add("background tissue")
    labels.add("Spleen", id=7)
    labels.add("liver", id=9)
    result = segment(vol, path, labels, options=PLAIN)
    model, meta = load_mcanet_checkpoint(path)
    lo, hi = np.percentile(vol.array.astype(np.float64), [1.0, 99.0])
    unit = np.clip((vol.array - lo) / (hi - lo), 0, 1)
    x = torch.from_numpy(np.repeat(unit[:, None], 3, 1) * 255.0 - np.array(meta.mean).reshape(1, 3, 1, 1))
    x = (x / torch.tensor(meta.std).view(1, 3, 1, 1)).float()
    with torch.no_grad():
        expected = np.array([0, 9, 7])[model(x).argmax(1).numpy()]
    np.testing.assert_array_equal(result.label_map.data, expected)
    assert result.class_ids == (9, 7) and result.label_map.labels is labels


def test_in_plane_resampling_returns_to_the_volume_grid(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, spacing=(1.0, 1.0))
    vol = _ct_volume(depth=2, h=50, w=30, spacing=(0.5, 0.75, 3.0))
    result = segment(vol, path, options=PLAIN)
    assert result.label_map.shape == (2, 50, 30)
    # the model saw the slice at 1 mm: 50 * 0.75 = 37.5 -> 38 rows, 30 * 0.5 = 15 columns
    seen = []
    model, meta = load_mcanet_checkpoint(path)
    model.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    segment(vol, model, meta=meta, options=PLAIN)
    assert seen == [(64, 32)]  # (38, 15) padded to multiples of 32


def test_two_and_a_half_d_stacks_neighbouring_slices(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, context_slices=1, in_channels=3)
    vol = _ct_volume(depth=3, seed=2)
    result = segment(vol, path, options=PLAIN)
    model, meta = load_mcanet_checkpoint(path)
    lo, hi = -160.0, 240.0
    unit = np.clip((vol.array.astype(np.float64) - lo) / (hi - lo), 0, 1)
    stacks = np.stack([unit[[0, 0, 1]], unit[[0, 1, 2]], unit[[1, 2, 2]]])  # edges repeat
    x = (255 * stacks - np.array(meta.mean).reshape(1, 3, 1, 1)) / np.array(meta.std).reshape(1, 3, 1, 1)
    x = torch.nn.functional.pad(torch.from_numpy(x).float(), (0, 16, 0, 24))
    with torch.no_grad():
        expected = model(x)[..., :40, :48].argmax(1).numpy()
    np.testing.assert_array_equal(result.label_map.data, expected)


def test_tiles_cover_large_slices_exactly() -> None:
    """A per-pixel network gives the same logits whether the slice is tiled or not."""
    meta = replace(CT_META, tile_size=(32, 32))
    net = torch.nn.Conv2d(3, 3, 1)
    x = torch.randn(2, 3, 70, 45)
    with torch.no_grad():
        tiled = forward_slices(net, x, meta, overlap=0.25)
        whole = net(x)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)


def test_large_slice_is_tiled_through_segment(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, tile_size=(32, 32))
    model, meta = load_mcanet_checkpoint(path)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    result = segment(_ct_volume(depth=1, h=40, w=70), model, meta=meta, options=PLAIN)
    assert result.label_map.shape == (1, 40, 70)
    assert len(seen) == 2 * 3 and all(s[-2:] == (32, 32) for s in seen)


def test_photo_is_one_slice(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, modality="photo", classes=sigmoid_classes("lesion"),
                           window=IntensityWindow("range", low=0, high=255), spacing=None)
    rgb = np.random.default_rng(3).integers(0, 256, size=(30, 41, 3), dtype=np.uint8)
    result = segment(Photo(rgb), path, options=PLAIN)
    model, meta = load_mcanet_checkpoint(path)
    x = (torch.from_numpy(rgb).permute(2, 0, 1)[None].double() - torch.tensor(meta.mean).view(1, 3, 1, 1))
    x = torch.nn.functional.pad((x / torch.tensor(meta.std).view(1, 3, 1, 1)).float(), (0, 23, 0, 2))
    with torch.no_grad():
        p = torch.sigmoid(model(x)[0, 0, :30, :41]).numpy()
    assert result.label_map.shape == (30, 41)
    np.testing.assert_array_equal(result.label_map.data, (p >= 0.3).astype(np.uint8))
    assert result.probabilities.shape == (1, 30, 41)


def test_two_slice_volume(tmp_path: Path) -> None:
    result = segment(_ct_volume(depth=2), tiny_checkpoint(tmp_path), options=FUSED)
    assert result.label_map.shape == (2, 40, 48)


def test_thousand_slices_stream_with_progress(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    vol = Volume(np.random.default_rng(4).integers(-200, 300, size=(1000, 12, 10), dtype=np.int16), modality="CT")
    calls: list[tuple[int, int]] = []
    result = segment(vol, path, options=replace(FUSED, batch_size=125, keep_probabilities=False),
                     progress=lambda done, total, msg: calls.append((done, total)))
    assert result.label_map.shape == (1000, 12, 10) and result.probabilities is None
    assert calls[0] == (0, 1000) and calls[-1] == (1000, 1000) and len(calls) == 9


def test_cancel_stops_between_batches(tmp_path: Path) -> None:
    token = CancelToken()
    seen = []

    def progress(done: int, total: int, msg: str) -> None:
        seen.append(done)
        if done >= 2:
            token.cancel()

    with pytest.raises(Cancelled):
        segment(_ct_volume(depth=6), tiny_checkpoint(tmp_path), options=replace(FUSED, batch_size=2),
                progress=progress, cancel=token)
    assert seen == [0, 2]


def test_nan_voxels_are_a_clear_error_or_background(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    arr = _ct_volume().array.astype(np.float32)
    arr[1, 3:5, 3:5] = np.nan
    vol = Volume(arr, modality="CT", source=tmp_path / "scan.nii.gz")
    with pytest.raises(ModelError, match=r"scan.nii.gz: the volume has 4 NaN voxels"):
        segment(vol, path, options=FUSED)
    result = segment(vol, path, options=replace(FUSED, nan_policy="zero"))
    assert result.label_map.shape == vol.shape


def test_no_model_for_the_modality(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    mr = Volume(np.zeros((2, 8, 8), np.float32), modality="MR")
    with pytest.raises(ModelError, match="this volume is MR, but the model was trained on CT"):
        segment(mr, path)
    with pytest.raises(ModelError, match="trained on CT volumes, not photos"):
        segment(Photo(np.zeros((8, 8, 3), np.uint8)), path)


def test_classes_missing_from_the_label_set(tmp_path: Path) -> None:
    labels = LabelSet.from_text("liver, kidney")
    with pytest.raises(ModelError, match="predicts spleen, which the label set does not have"):
        segment(_ct_volume(depth=1), tiny_checkpoint(tmp_path), labels)


def test_network_that_does_not_match_its_metadata(tmp_path: Path) -> None:
    model = tiny_model(replace(CT_META, classes=sigmoid_classes("liver")))
    with pytest.raises(ModelError, match=r"1 output channels\) does not match its metadata \(3 / 3"):
        segment(_ct_volume(depth=1), model, meta=CT_META)
    other = tiny_model(CT_META)
    path = tiny_checkpoint(tmp_path)
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        header = f.metadata()
    tensors = load_file(str(path))
    tensors["decode_head.conv_seg.weight"] = other.decode_head.conv_seg.weight[:2].detach().clone()
    save_file(tensors, str(path), metadata=header)
    with pytest.raises(WeightsError, match=r"tiny.safetensors: .*wrong shape: decode_head.conv_seg.weight"):
        segment(_ct_volume(depth=1), path)


@pytest.mark.gpu
def test_gpu_autocast_matches_cpu_fp32(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path)
    vol = _ct_volume(depth=8, h=96, w=80)
    cpu = segment(vol, path, options=PLAIN)
    for precision in ("bf16", "fp16"):
        gpu = segment(vol, path, options=InferenceOptions(device="cuda", precision=precision))
        inter = np.logical_and(cpu.label_map.data > 0, gpu.label_map.data == cpu.label_map.data).sum()
        dice = 2 * inter / ((cpu.label_map.data > 0).sum() + (gpu.label_map.data > 0).sum())
        assert dice >= (0.99 if precision == "fp16" else 0.98), precision  # bf16 keeps 8 mantissa bits
        assert np.abs(cpu.probabilities.astype(int) - gpu.probabilities).mean() < 2.0


@pytest.mark.gpu
def test_gpu_fp32_fused_equals_official_fixture() -> None:
    import json

    from engine.medical.fast import fuse_for_inference
    from engine.medical.mcanet import create_mcanet
    from tests.engine.medical._seeded import seeded_input, seeded_state_dict

    fixtures = Path(__file__).parent / "fixtures"
    ref = np.load(fixtures / "official_mcanet_t_softmax.npz")
    shapes = {k: tuple(v) for k, v in json.loads((fixtures / "official_keys_t.json").read_text()).items()}
    shapes["decode_head.conv_seg.weight"] = (5, 32, 1, 1)
    shapes["decode_head.conv_seg.bias"] = (5,)
    model = create_mcanet("t", out_channels=5).eval()
    model.load_state_dict(seeded_state_dict(shapes))
    net = fuse_for_inference(model).cuda()
    x = seeded_input(int(ref["input_seed"]), tuple(ref["input_shape"])).cuda()
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        out = net(x).cpu().numpy()
    assert np.abs(out - ref["logits"]).max() <= 1e-4


def test_photo_resize_scale_like_the_official_test_pipeline(tmp_path: Path) -> None:
    path = tiny_checkpoint(tmp_path, modality="photo", classes=sigmoid_classes("lesion"), spacing=None,
                           window=IntensityWindow("range", low=0, high=255), resize_scale=(64, 64))
    model, meta = load_mcanet_checkpoint(path)
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape[-2:])))
    rgb = np.random.default_rng(5).integers(0, 256, size=(30, 100, 3), dtype=np.uint8)
    result = segment(Photo(rgb), model, meta=meta, options=PLAIN)
    assert seen == [(32, 64)]  # 100 -> 64 (scale 0.64), 30 -> 19, padded to multiples of 32
    assert result.label_map.shape == (30, 100) and result.probabilities.shape == (1, 30, 100)
