"""Generation metadata read from files written exactly as the tools write them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import filemakers as fm
from tests.conftest import run, run_json, snapshot


def register(workspace_dir: Path, path: Path, *flags: str) -> dict:
    document = run_json("-w", workspace_dir, "register", path, *flags)
    [result] = document["results"]
    assert result["status"] == "new", result
    assert run_json("-w", workspace_dir, "show", str(result["asset"]["id"])) == result["asset"]
    return result["asset"]


def fields(asset: dict) -> dict:
    return {
        name: (entry["value"], entry["source"])
        for name, entry in asset["generation"]["fields"].items()
        if entry is not None
    }


def settings(asset: dict) -> dict:
    return {key: (e["value"], e["source"]) for key, e in asset["generation"]["settings"].items()}


def test_a1111_png_parameters_chunk(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_a1111_png(tmp_path / "a1111.png", fm.sample("coffee.jpg"))
    asset = register(workspace_dir, path)
    assert fields(asset) == {
        "tool": ("automatic1111", "a1111"),
        "tool_version": ("v1.6.0", "a1111"),
        "model": ("sd_xl_base_1.0", "a1111"),
        "model_hash": ("31e35c80fc", "a1111"),
        "prompt": (fm.A1111_PROMPT, "a1111"),
        "negative_prompt": (fm.A1111_NEGATIVE, "a1111"),
        "seed": (1234567890, "a1111"),
    }
    got = settings(asset)
    assert got["sampler"] == ("DPM++ 2M Karras", "a1111")
    assert got["steps"] == (30, "a1111")
    assert got["cfg_scale"] == (7, "a1111")
    assert got["Size"] == ("512x512", "a1111")
    assert got["Denoising strength"] == (0.45, "a1111")
    assert asset["generation"]["raw"]["a1111"] == {"parameters": fm.A1111_INFOTEXT}


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a1111_exif_user_comment(workspace_dir: Path, tmp_path: Path, fmt: str) -> None:
    path = fm.write_a1111_jpeg(tmp_path / f"a1111.{fmt.lower()}", fm.sample("rocket.jpg"), fmt=fmt)
    asset = register(workspace_dir, path)
    got = fields(asset)
    assert got["prompt"] == (fm.A1111_PROMPT, "a1111")
    assert got["negative_prompt"] == (fm.A1111_NEGATIVE, "a1111")
    assert got["seed"] == (1234567890, "a1111")
    assert got["model"] == ("sd_xl_base_1.0", "a1111")
    assert settings(asset)["steps"] == (30, "a1111")


def test_a1111_non_ascii_prompt(workspace_dir: Path, tmp_path: Path) -> None:
    infotext = "灯台, 夕暮れ — «phare»\nSteps: 20, Sampler: Euler a, CFG scale: 5, Seed: 7"
    path = fm.write_a1111_jpeg(tmp_path / "jp.jpg", fm.sample("rocket.jpg"), infotext)
    assert fields(register(workspace_dir, path))["prompt"] == ("灯台, 夕暮れ — «phare»", "a1111")


@pytest.mark.parametrize(
    "with_workflow",
    [True, False],
    ids=["SaveImage: prompt and workflow chunks", "API: prompt chunk only"],
)
def test_comfyui_png(workspace_dir: Path, tmp_path: Path, with_workflow: bool) -> None:
    # sd-parsers reads the first kind; our own graph walk reads the second. Same answer.
    path = fm.write_comfyui_png(
        tmp_path / "ComfyUI_00001_.png", fm.sample("chelsea.png"), with_workflow=with_workflow
    )
    asset = register(workspace_dir, path)
    assert fields(asset) == {
        "tool": ("comfyui", "comfyui"),
        "model": ("sd_xl_base_1.0.safetensors", "comfyui"),
        "prompt": (fm.COMFY_POSITIVE, "comfyui"),
        "negative_prompt": (fm.COMFY_NEGATIVE, "comfyui"),
        "seed": (fm.COMFY_SEED, "comfyui"),
    }
    got = settings(asset)
    assert got["sampler"] == ("euler", "comfyui")
    assert got["steps"] == (20, "comfyui")
    assert got["cfg_scale"] == (8, "comfyui")
    assert got["scheduler"] == ("normal", "comfyui")
    expected_raw = {"prompt": fm.COMFY_PROMPT}
    if with_workflow:
        expected_raw["workflow"] = fm.COMFY_WORKFLOW
    assert asset["generation"]["raw"]["comfyui"] == expected_raw


def test_comfyui_graph_with_a_cycle_or_no_sampler(workspace_dir: Path, tmp_path: Path) -> None:
    from PIL.PngImagePlugin import PngInfo

    cyclic = {
        "1": {"class_type": "KSampler", "inputs": {"seed": 5, "positive": ["2", 0]}},
        "2": {"class_type": "ConditioningCombine", "inputs": {"a": ["3", 0]}},
        "3": {"class_type": "ConditioningCombine", "inputs": {"a": ["2", 0]}},
    }
    info = PngInfo()
    info.add_text("prompt", json.dumps(cyclic))
    path = tmp_path / "cyclic.png"
    fm.sample("camera.png").save(path, pnginfo=info)
    asset = register(workspace_dir, path)
    assert fields(asset) == {"tool": ("comfyui", "comfyui"), "seed": (5, "comfyui")}


def test_invokeai_4_metadata_chunk(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_invokeai_png(tmp_path / "invoke.png", fm.sample("astronaut.jpg"))
    asset = register(workspace_dir, path)
    assert fields(asset) == {
        "tool": ("invokeai", "invokeai"),
        "tool_version": ("4.2.9", "invokeai"),
        "model": ("stable-diffusion-v1-5", "invokeai"),
        "model_hash": ("blake3:9d1c0ffee", "invokeai"),
        "prompt": ("a red barn in a snowy field, golden hour", "invokeai"),
        "negative_prompt": ("people, text", "invokeai"),
        "seed": (3141592653, "invokeai"),
    }
    got = settings(asset)
    assert got["steps"] == (30, "invokeai")
    assert got["cfg_scale"] == (7.5, "invokeai")
    assert got["sampler"] == ("euler", "invokeai")
    assert got["model_base"] == ("sd-1", "invokeai")


def test_invokeai_3_model_name(workspace_dir: Path, tmp_path: Path) -> None:
    metadata = dict(fm.INVOKE_METADATA, model={"model_name": "sdxl-turbo", "base_model": "sdxl"})
    metadata.pop("app_version")
    path = fm.write_invokeai_png(tmp_path / "invoke3.png", fm.sample("camera.png"), metadata)
    asset = register(workspace_dir, path)
    assert fields(asset)["model"] == ("sdxl-turbo", "invokeai")
    assert settings(asset)["model_base"] == ("sdxl", "invokeai")


def test_exif_software_and_artist(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_exif_jpeg(
        tmp_path / "exif.jpg", fm.sample("coffee.jpg"), "Midjourney v6.1", "Jo Artist"
    )
    asset = register(workspace_dir, path)
    assert fields(asset) == {"tool": ("Midjourney v6.1", "exif")}
    assert settings(asset)["artist"] == ("Jo Artist", "exif")


def test_xmp_creator_tool_and_digital_source_type(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_xmp_jpeg(tmp_path / "firefly.jpg", fm.sample("coffee.jpg"))
    asset = register(workspace_dir, path)
    assert fields(asset) == {"tool": ("Adobe Firefly Image 3", "exif")}
    assert settings(asset)["digital_source_type"] == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
        "exif",
    )


def test_xmp_in_a_png_itxt_chunk(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_xmp_png(tmp_path / "firefly.png", fm.sample("coffee.jpg"))
    asset = register(workspace_dir, path)
    assert fields(asset) == {"tool": ("Adobe Firefly Image 3", "exif")}


def test_hostile_xmp_is_ignored_not_expanded(workspace_dir: Path, tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    )
    path = fm.write_xmp_jpeg(tmp_path / "bomb.jpg", fm.sample("coffee.jpg"), bomb)
    asset = register(workspace_dir, path)
    assert fields(asset) == {}


def test_sidecar_beside_file(workspace_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "shot010_v003.png"
    fm.sample("chelsea.png").save(path)
    (tmp_path / "shot010_v003.png.json").write_text(
        json.dumps(
            {
                "schema": "provenance.sidecar/1",
                "tool": "comfyui",
                "tool_version": "0.3.10",
                "model": "flux-dev",
                "model_version": "1.0",
                "prompt": "foggy harbour at dawn",
                "negative_prompt": "people",
                "seed": "18446744073709551615",
                "settings": {"steps": 28, "guidance": 3.5, "lora": ["harbour_v2"]},
            }
        )
    )
    asset = register(workspace_dir, path)
    assert fields(asset) == {
        "tool": ("comfyui", "sidecar"),
        "tool_version": ("0.3.10", "sidecar"),
        "model": ("flux-dev", "sidecar"),
        "model_version": ("1.0", "sidecar"),
        "prompt": ("foggy harbour at dawn", "sidecar"),
        "negative_prompt": ("people", "sidecar"),
        "seed": (2**64 - 1, "sidecar"),
    }
    assert settings(asset) == {
        "steps": (28, "sidecar"),
        "guidance": (3.5, "sidecar"),
        "lora": (["harbour_v2"], "sidecar"),
    }


def test_flags_override_embedded_and_sidecar(workspace_dir: Path, tmp_path: Path) -> None:
    path = fm.write_a1111_png(tmp_path / "shot.png", fm.sample("coffee.jpg"))
    (tmp_path / "shot.json").write_text(
        json.dumps({"schema": "provenance.sidecar/1", "model": "from-sidecar", "seed": 5})
    )
    asset = register(
        workspace_dir,
        path,
        "--seed",
        "99",
        "--model-hash",
        "abc123",
        "--setting",
        "steps=50",
        "--setting",
        "look=noir",
        "--use",
        "background",
        "--production",
        "Harbour",
    )
    got = fields(asset)
    assert got["seed"] == (99, "flag")
    assert got["model_hash"] == ("abc123", "flag")
    assert got["model"] == ("from-sidecar", "sidecar")
    assert got["prompt"] == (fm.A1111_PROMPT, "a1111")
    assert settings(asset)["steps"] == (50, "flag")
    assert settings(asset)["look"] == ("noir", "flag")
    assert settings(asset)["sampler"] == ("DPM++ 2M Karras", "a1111")
    assert asset["intended_use"] == "background"
    assert asset["production"] == "Harbour"


@pytest.mark.parametrize(
    "content",
    [
        '{"frames": 48, "renderer": "karma", "elapsed": 812.5}',  # a render log
        "Render started 10:41\nframe 1001 done\n",  # a shell redirect's output
        '{"schema": "render-log/3", "prompt": 4}',  # another tool's schema
        "[1, 2, 3]",
    ],
)
def test_an_unrelated_stem_json_is_passed_over_with_a_note(
    workspace_dir: Path, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "shot010.png"
    fm.sample("coffee.jpg").save(path)
    (tmp_path / "shot010.json").write_text(content)
    result = run("-w", workspace_dir, "register", path, "--use", "ideation")
    assert result.exit_code == 0, result.stderr
    assert "new     asset 1" in result.stdout
    assert "note    " in result.stderr
    assert "shot010.json" in result.stderr
    assert "not read as its sidecar" in result.stderr
    document = run_json("-w", workspace_dir, "show", "1")
    assert fields(document) == {}
    assert "sidecar" not in document["generation"]["raw"]
    # The note reaches scripts as well.
    (tmp_path / "shot011.json").write_text(content)
    fm.sample("rocket.jpg").save(tmp_path / "shot011.png")
    report = run_json("-w", workspace_dir, "register", tmp_path / "shot011.png")
    assert report["results"][0]["status"] == "new"
    assert "shot011.json" in report["results"][0]["notes"][0]


def test_a_stem_json_declaring_the_schema_stays_strict(workspace_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "shot010.png"
    fm.sample("coffee.jpg").save(path)
    (tmp_path / "shot010.json").write_text('{"schema": "provenance.sidecar/1", "promt": "x"}')
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", path)
    assert result.exit_code == 1
    assert "unknown key(s) promt" in result.stderr
    assert snapshot(workspace_dir) == before


def test_metadata_file_flag_applies_to_every_file(workspace_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    fm.sample("coffee.jpg").save(folder / "a.png")
    fm.sample("rocket.jpg").save(folder / "b.png")
    metadata = tmp_path / "batch-meta.json"
    metadata.write_text(json.dumps({"tool": "nuke-copycat", "model": "matte-v2"}))
    document = run_json("-w", workspace_dir, "register", folder, "--metadata", metadata)
    assert document["summary"]["new"] == 2
    for result in document["results"]:
        assert fields(result["asset"])["model"] == ("matte-v2", "metadata-file")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"promt": "typo"}', "unknown key(s) promt"),
        ('{"seed": -4}', "seed must be an integer"),
        ('{"seed": true}', "seed must be an integer"),
        ('{"schema": "other/9"}', "is not 'provenance.sidecar/1'"),
        ('{"settings": [1]}', "'settings' must be a JSON object"),
        ('{"prompt": {"a": 1}}', "'prompt' must be a string"),
    ],
)
def test_malformed_sidecar_is_refused_and_changes_nothing(
    workspace_dir: Path, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "shot.png"
    fm.sample("coffee.jpg").save(path)
    (tmp_path / "shot.png.json").write_text(content)
    before = snapshot(workspace_dir)
    result = run("-w", workspace_dir, "register", path)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert snapshot(workspace_dir) == before
