"""The CLIP detector end to end with a tiny model: its config and random weights are made
here, saved to a local checkpoint, and loaded back through the path users take. Nothing is
downloaded."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests import filemakers as fm
from tests.conftest import run, run_json

open_clip = pytest.importorskip("open_clip")
torch = pytest.importorskip("torch")

TINY = "Tiny-ViT-provenance-test"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("clip")
    config = folder / f"{TINY}.json"
    config.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model = open_clip.create_model(TINY, pretrained=None)
    checkpoint = folder / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    return config, checkpoint


def test_detector_loads_a_local_checkpoint(tiny_model: tuple[Path, Path]) -> None:
    from provenance.detectors.clip import CLIPDetector

    config, checkpoint = tiny_model
    detector = CLIPDetector(model=TINY, checkpoint=checkpoint, model_config=config, batch_size=2)
    assert detector.spec.name == "clip"
    assert detector.spec.dim == 32
    assert detector.spec.weights_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    images = [fm.sample(name) for name in fm.SAMPLE_NAMES]
    vectors = detector.embed(images)
    assert vectors.shape == (len(images), 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([detector.embed([image]) for image in images])
    # bf16 (on CPUs with AMX) is used only within cosine 0.999 of fp32.
    assert (np.sum(vectors * one_by_one, axis=1) > 0.999).all()
    assert detector.embed([]).shape == (0, 32)


def test_missing_checkpoint_is_reported(tmp_path: Path) -> None:
    from provenance.detectors.clip import CLIPDetector
    from provenance.errors import DetectorUnavailable

    with pytest.raises(DetectorUnavailable, match="does not exist"):
        CLIPDetector(model="ViT-B-32", checkpoint=tmp_path / "absent.pt")


def _configure(workspace_dir: Path, config: Path, checkpoint: Path) -> None:
    toml = workspace_dir / "provenance.toml"
    toml.write_text(
        toml.read_text()
        + f'\ndetectors = "phash,sscd,clip"\nclip_model = "{TINY}"\n'
        + f'clip_checkpoint = "{checkpoint}"\nclip_model_config = "{config}"\n'
    )


def test_clip_indexes_and_checks_end_to_end(
    workspace_dir: Path, tmp_path: Path, tiny_model: tuple[Path, Path]
) -> None:
    config, checkpoint = tiny_model
    _configure(workspace_dir, config, checkpoint)
    added = run_json("-w", workspace_dir, "refs", "add", "studio-ip", "--from", fm.SAMPLES)
    assert set(added["indexes"]) == {"phash", "sscd", "clip"}
    assert added["indexes"]["clip"]["count"] == len(fm.SAMPLE_NAMES)
    manifest = json.loads((workspace_dir / "indexes" / "studio-ip" / "clip.json").read_text())
    assert (
        manifest["detector"]["weights_sha256"]
        == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    )
    copy = tmp_path / "copy.png"
    fm.sample("coffee.jpg").save(copy)
    check = run_json("-w", workspace_dir, "register", copy)["results"][0]["check"]
    assert {d["name"]: d["status"] for d in check["detectors"]} == {
        "phash": "ran",
        "sscd": "ran",
        "clip": "ran",
    }
    clip_matches = [m for m in check["matches"] if m["detector"] == "clip"]
    assert clip_matches
    assert max(m["score"] for m in clip_matches) > 0.999  # the identical picture
    assert check["thresholds"]["clip"]["higher_is_closer"] is True


def test_without_torch_clip_is_unavailable_and_the_check_says_so(
    workspace_dir: Path, tmp_path: Path, tiny_model: tuple[Path, Path]
) -> None:
    config, checkpoint = tiny_model
    _configure(workspace_dir, config, checkpoint)
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from provenance.cli import main\n"
        "sys.argv = ['provenance'] + sys.argv[1:]\n"
        "main()\n"
    )

    def provenance(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, "-w", str(workspace_dir), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    added = provenance("refs", "add", "studio-ip", "--from", str(fm.SAMPLES), "--json")
    assert added.returncode == 0, added.stderr
    report = json.loads(added.stdout)
    assert "clip" not in report["indexes"]
    assert "pip install 'provenance[clip]'" in report["unavailable_detectors"]["clip"]
    registered = provenance("register", str(fm.SAMPLES / "rocket.jpg"), "--json")
    check = json.loads(registered.stdout)["results"][0]["check"]
    clip = next(d for d in check["detectors"] if d["name"] == "clip")
    assert clip["status"] == "unavailable"
    assert "torch" in clip["reason"]
    text = run("-w", workspace_dir, "check", str(check["asset_id"]))
    # With torch back, the set has no clip index yet: built before the check, said loudly.
    assert "clip: the index was stale (missing, for" in text.stderr
    assert "rebuilt with" in text.stderr
