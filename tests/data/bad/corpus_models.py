"""Bad checkpoints (``predict --checkpoint``), release weights (``import-release --weights``) and processed HDF5."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from make_corpus import held, npy, npz


class _Exploit:
    """Pickles as a call of ``os.system`` (what ``weights_only=True`` must refuse)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch PWNED",))


def _tiny_model() -> Any:
    import torch

    from mlpgraph.models import build_model

    torch.manual_seed(0)
    return build_model(
        "mlpgraph", layout="h36m16", frames=1, hid_dim=8, spatial_hid_dim=8, channel_hid_dim=8, num_layers=1
    ).eval()


def torch_bytes(obj: Any, name: str) -> bytes:
    """What :func:`torch.save` writes for ``obj`` to a file called ``name`` (its archive prefix is the name)."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        torch.save(obj, Path(tmp) / name)
        return (Path(tmp) / name).read_bytes()


def good_checkpoint() -> dict[str, Any]:
    """The content :func:`mlpgraph.checkpoints.save_checkpoint` writes for a tiny MLP-Graph."""
    from mlpgraph.checkpoints import CHECKPOINT_VERSION, network_entry

    entry = network_entry("mlpgraph", _tiny_model())
    return {"format_version": CHECKPOINT_VERSION, "networks": {"model": entry}, "data_fingerprint": None, "meta": {}}


def checkpoint_files() -> dict[str, bytes]:
    """Bad ``.pt`` checkpoints."""
    import torch

    def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        content = good_checkpoint()
        change(content)
        return content

    def entry(content: dict[str, Any]) -> dict[str, Any]:
        return content["networks"]["model"]

    def first_weight(value: Any) -> Callable[[dict[str, Any]], None]:
        def change(content: dict[str, Any]) -> None:
            state = entry(content)["state_dict"]
            key = next(iter(state))
            state[key] = value(state[key]) if callable(value) else value

        return change

    good = torch_bytes(good_checkpoint(), "ckpt_truncated.pt")
    cases: dict[str, Any] = {
        "ckpt_list_not_dict.pt": [1, 2, 3],
        "ckpt_no_networks.pt": {"format_version": 1, "meta": {}},
        "ckpt_wrong_version.pt": edited(lambda c: c.update(format_version=99)),
        "ckpt_networks_empty.pt": edited(lambda c: c.update(networks={})),
        "ckpt_network_entry_string.pt": edited(lambda c: c["networks"].update(model="weights")),
        "ckpt_unknown_model_name.pt": edited(lambda c: entry(c).update(name="resnet")),
        "ckpt_config_list.pt": edited(lambda c: entry(c)["config"].update(hid_dim=[8])),
        "ckpt_huge_config.pt": edited(lambda c: entry(c)["config"].update(hid_dim=10**9, spatial_hid_dim=10**9)),
        "ckpt_nan_weight.pt": edited(first_weight(lambda t: torch.full_like(t, float("nan")))),
        "ckpt_state_entry_int.pt": edited(first_weight(7)),
        "ckpt_weight_wrong_shape.pt": edited(first_weight(torch.zeros(3, 3))),
        "ckpt_fingerprint_number.pt": edited(lambda c: c.update(data_fingerprint=5)),
        "ckpt_meta_numpy_array.pt": edited(lambda c: c.update(meta={"mean": np.zeros(3)})),
        "ckpt_pickled_os_system.pt": edited(lambda c: c.update(meta={"x": _Exploit()})),
    }
    files = {name: torch_bytes(content, name) for name, content in cases.items()}
    files["ckpt_truncated.pt"] = good[: len(good) // 2]
    files["ckpt_random_bytes.pt"] = np.random.default_rng(5).bytes(4096)
    files["ckpt_legacy_pickle_4gb_string.pt"] = b"X\xff\xff\xff\xff"  # a bare pickle declaring a 4 GB string
    return files


def release_files() -> dict[str, bytes]:
    """Bad release ``.pth`` state dicts."""
    import torch

    from mlpgraph.models.release import state_dict_to_release

    state = state_dict_to_release(_tiny_model().state_dict())
    nan = dict(state)
    key = next(iter(nan))
    nan[key] = torch.full_like(nan[key], float("inf"))
    cases: dict[str, Any] = {
        "release_inf_weight.pth": nan,
        "release_tensor_not_dict.pth": torch.zeros(3),
        "release_missing_keys.pth": {"weight": torch.zeros(2)},
        "release_entry_int.pth": {**state, "extra": 3},
        "release_pickled_os_system.pth": {"weight": _Exploit()},
        "release_empty.pth": {},
    }
    return {name: torch_bytes(content, name) for name, content in cases.items()}


# ------------------------------------------------------------------------------------------ HDF5


def good_processed(folder: Path, raw: dict[str, Any]) -> Path:
    """A valid processed file built from ``raw`` by the preprocess stage's builder (deterministic bytes)."""
    from mlpgraph.data.preprocess import build_hdf5

    (folder / "raw").mkdir()
    (folder / "raw" / "data_3d_h36m.npz").write_bytes(npz({"positions_3d": npy(held(raw["p3d"]))}))
    (folder / "raw" / "data_2d_h36m_gt.npz").write_bytes(
        npz({"positions_2d": npy(held(raw["p2d"])), "metadata": npy(held(raw["meta"]))})
    )
    (folder / "raw" / "cameras.json").write_text(json.dumps(raw["cameras"]))
    return build_hdf5(folder / "raw", folder / "good.h5", train_subjects=["S1"], test_subjects=["S9"])


def _h5_edit(change: Callable[[Any], None]) -> Callable[[Path, Path], None]:
    def make(good: Path, out: Path) -> None:
        import h5py

        shutil.copy(good, out)
        with h5py.File(out, "r+") as handle:
            change(handle)

    return make


def _replace(name: str, value: Callable[[np.ndarray], np.ndarray], **options: Any) -> Callable[[Any], None]:
    def change(handle: Any) -> None:
        data = value(handle[name][()])
        del handle[name]
        handle.create_dataset(name, data=data, **options)

    return change


def _nan(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[3, 2, 1] = np.nan
    return x


def _broken(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    x[-1, 1] = 10**6
    return x


H5_EDITS: dict[str, Callable[[Path, Path], None]] = {
    "h5_wrong_version.h5": _h5_edit(lambda h: h.attrs.modify("format_version", 99)),
    "h5_incomplete.h5": _h5_edit(lambda h: h.attrs.modify("complete", False)),
    "h5_missing_dataset.h5": _h5_edit(lambda h: h.__delitem__("poses_3d")),
    "h5_group_not_dataset.h5": _h5_edit(lambda h: (h.__delitem__("camera"), h.create_group("camera"))),
    "h5_nan.h5": _h5_edit(_replace("poses_3d", _nan)),
    "h5_wrong_dtype.h5": _h5_edit(_replace("poses_2d", lambda x: x.astype("S4"))),
    "h5_wrong_shape.h5": _h5_edit(_replace("poses_3d", lambda x: x[:, :, :2])),
    "h5_compressed.h5": _h5_edit(_replace("poses_3d", lambda x: x, compression="gzip")),
    "h5_broken_index.h5": _h5_edit(_replace("sequences", _broken)),
    "h5_fewer_labels.h5": _h5_edit(_replace("camera", lambda x: x[:-3])),
}


def processed_files(raw: dict[str, Any]) -> dict[str, bytes]:
    """Bad processed HDF5 files (``mlpgraph.data.preprocess.load_processed``)."""
    with tempfile.TemporaryDirectory() as tmp:
        good = good_processed(Path(tmp), raw)
        files = {"h5_not_hdf5.h5": b"\x89HDF\r\n\x1a\n but not really", "h5_truncated.h5": good.read_bytes()[:3000]}
        for name, make in H5_EDITS.items():
            make(good, Path(tmp) / name)
            files[name] = (Path(tmp) / name).read_bytes()
    return files
