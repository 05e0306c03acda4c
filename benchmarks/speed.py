"""Model throughput against this machine's compute-bound limit, and end-to-end checking.

For each embedding model: the multiply-accumulates (MACs) per image counted from the model
itself, the machine's measured rate for the arithmetic the model runs (int8 GEMM through
ONNX Runtime for the int8 SSCD export; fp32 and bf16 matmul through torch for CLIP), the
limit = rate / MACs in images per second, and the measured images per second at batch 16
(model call only). Then register + check end to end through the library with a reference
set, with phash + sscd and with clip added, and the share of time spent outside the models.
Each of ``--repeats`` runs measures limits and throughput side by side; medians are written.

CLIP uses random ViT-B-32 weights saved to a local checkpoint: the same arithmetic as real
weights, nothing downloaded.

    python benchmarks/speed.py [--images N] [--refs N] [--repeats N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import describe  # noqa: E402
from benchmarks.quality import median_tree  # noqa: E402
from provenance import (  # noqa: E402
    RegisterRequest,
    Workspace,
    checking,
    reference_sets,
    registration,
)
from provenance.detectors.sscd import SSCDDetector, model_path  # noqa: E402
from provenance.errors import ProvenanceError  # noqa: E402
from provenance.index.faiss_index import load_index  # noqa: E402
from provenance.media import decode_image  # noqa: E402

CORPUS = ROOT / "benchmarks" / ".corpus" / "images"
BATCH = 16


def median_seconds(run: Any, repeats: int = 5) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sscd_macs(size: int) -> float:
    """MACs of one SSCD forward pass at ``size``×``size``, from the ONNX graph's convs."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(model_path()))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, (1, size, size, 3), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        info.name: [d.dim_value for d in info.type.tensor_type.shape.dim]
        for info in list(inferred.graph.value_info) + list(inferred.graph.output)
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    dequantised = {
        n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear"
    }
    macs = 0.0
    for node in model.graph.node:
        if node.op_type == "Conv":
            kernel = weights[dequantised.get(node.input[1], node.input[1])]
            out = shapes[node.output[0]]
            macs += math.prod(out) * kernel[1] * kernel[2] * kernel[3]
        elif node.op_type == "Gemm":
            kernel = weights[dequantised.get(node.input[1], node.input[1])]
            macs += kernel[0] * kernel[1]
    return macs


def int8_gemm_rate() -> float:
    """MACs per second of an int8 (uint8 × int8) 1024³ GEMM through ONNX Runtime."""
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    n = 1024
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.INT8, [n, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (n, n), dtype=np.uint8)
    b = rng.integers(-127, 127, (n, n), dtype=np.int8)
    seconds = median_seconds(lambda: session.run(None, {"a": a, "b": b}), repeats=20)
    del onnx
    return n**3 / seconds


def torch_matmul_rate(dtype_name: str) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    n = 2048
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    seconds = median_seconds(lambda: torch.matmul(a, b), repeats=10)
    return n**3 / seconds


def sample_images(count: int) -> list[Path]:
    files = sorted(CORPUS.iterdir())
    step = max(1, len(files) // count)
    return files[::step][:count]


def model_figures(pixels: list[Any], checkpoint: Path | None) -> dict[str, Any]:
    """Each model's images/s at batch 16 beside the limit its arithmetic allows here."""
    results: dict[str, Any] = {}
    sscd = SSCDDetector()
    batch = np.stack([sscd._prepare(image) for image in pixels[:BATCH]])
    session = sscd._batch_session  # the session full batches run in
    per_batch = median_seconds(lambda: session.run(["embedding"], {"image": batch}))
    macs = sscd_macs(sscd.size)
    rate = int8_gemm_rate()
    results["sscd"] = {
        "macs_per_image": macs,
        "int8_gemm_macs_per_s": rate,
        "limit_images_per_s": rate / macs,
        "measured_images_per_s": BATCH / per_batch,
        "ratio": (BATCH / per_batch) / (rate / macs),
    }
    if checkpoint is None:
        results["clip"] = "torch/open_clip not installed"
        return results
    import torch

    from provenance.detectors.clip import CLIPDetector

    clip = CLIPDetector(model="ViT-B-32", checkpoint=checkpoint)
    clip.embed(pixels[:BATCH])  # calibrates bf16 where the CPU has AMX
    tensor = torch.stack([clip._preprocess(image) for image in pixels[:BATCH]])
    per_batch = median_seconds(lambda: clip._encode(tensor))
    # ViT-B/32 at 224 px: 49 patches + 1 class token, width 768, 12 layers.
    tokens, width, layers = 50, 768, 12
    clip_macs = layers * (tokens * 12 * width * width + 2 * tokens * tokens * width)
    clip_macs += 49 * width * 32 * 32 * 3
    dtype = "bfloat16" if clip._bf16 else "float32"
    clip_rate = torch_matmul_rate(dtype)
    results["clip"] = {
        "precision": dtype,
        "macs_per_image": clip_macs,
        "matmul_macs_per_s": clip_rate,
        "limit_images_per_s": clip_rate / clip_macs,
        "measured_images_per_s": BATCH / per_batch,
        "ratio": (BATCH / per_batch) / (clip_rate / clip_macs),
    }
    return results


def end_to_end(
    scratch: Path, files: list[Path], queries_count: int, environ: dict[str, str]
) -> dict[str, Any]:
    """Ingest the references, then register + check the queries through the library (the
    CLI's code path, one process); time spent inside the models' embed calls."""
    refs = scratch / "refs"
    refs.mkdir()
    for path in files[queries_count:]:
        shutil.copyfile(path, refs / path.name)
    queries = scratch / "queries"
    queries.mkdir()
    for path in files[:queries_count]:
        shutil.copyfile(path, queries / path.name)
    workspace = Workspace.create(scratch / "ws", environ=environ)
    start = time.perf_counter()
    reference_sets.create(workspace, "bench", [refs], rights="third-party")
    ingest = time.perf_counter() - start
    in_models = [0.0]
    for name, detector in workspace.detectors().items():
        if name == "phash" or isinstance(detector, ProvenanceError):
            continue
        original = detector.embed

        def counting(images: Any, original: Any = original) -> Any:
            begin = time.perf_counter()
            try:
                return original(images)
            finally:
                in_models[0] += time.perf_counter() - begin

        detector.embed = counting  # type: ignore[method-assign]
    start = time.perf_counter()
    report = registration.register(workspace, [queries], RegisterRequest(), jobs=1)
    total = time.perf_counter() - start
    workspace.close()
    return {
        "reference_ingest_images_per_s": (len(files) - queries_count) / ingest,
        "register_and_check_files_per_s": len(report.results) / total,
        "model_share_of_time": in_models[0] / total,
        "outside_models_share": 1 - in_models[0] / total,
    }


# Each variant: its settings and the processes registering + checking (--jobs). With two,
# the checks' matches are found in worker processes: only files/s is measured there.
CHECK_VARIANTS: dict[str, tuple[dict[str, str], int]] = {
    "crops": ({"PROVENANCE_REGION_METHOD": "crops"}, 1),
    "windows": ({"PROVENANCE_REGION_METHOD": "windows", "PROVENANCE_REGION_SIZE": "320"}, 1),
    "crops, 2 processes": ({"PROVENANCE_REGION_METHOD": "crops"}, 2),
    "windows, 2 processes": (
        {"PROVENANCE_REGION_METHOD": "windows", "PROVENANCE_REGION_SIZE": "320"},
        2,
    ),
}


def _timed_register(
    workspace_dir: Path, folder: Path, environ: dict[str, str], jobs: int = 1
) -> tuple[Any, float, dict[str, float]]:
    """Register + check ``folder`` in the workspace: the report, the seconds it took, and
    the SSCD passes made, the seconds in them and the seconds verifying."""
    workspace = Workspace.open(workspace_dir, environ=environ)
    spent = {"passes": 0.0, "pass_seconds": 0.0, "verify_seconds": 0.0}
    detector = workspace.detectors()["sscd"]
    for method in ("embed", "embed_and_map"):
        original = getattr(detector, method)

        def counting(*a: Any, original: Any = original, method: str = method) -> Any:
            begin = time.perf_counter()
            try:
                return original(*a)
            finally:
                spent["pass_seconds"] += time.perf_counter() - begin
                spent["passes"] += len(a[0]) if method == "embed" else 1

        setattr(detector, method, counting)
    # Verification as a check runs it: the asset's and references' features and the fits.
    original_verify = checking.findings.verify

    def timed_verify(*a: Any) -> Any:
        begin = time.perf_counter()
        try:
            return original_verify(*a)
        finally:
            spent["verify_seconds"] += time.perf_counter() - begin

    checking.findings.verify = timed_verify  # type: ignore[assignment]
    start = time.perf_counter()
    try:
        report = registration.register(workspace, [folder], RegisterRequest(), jobs=jobs)
    finally:
        checking.findings.verify = original_verify  # type: ignore[assignment]
    total = time.perf_counter() - start
    workspace.close()
    return report, total, spent


def check_cost(scratch: Path, files: list[Path], queries_count: int) -> dict[str, Any]:
    """Register + check against a reference set of the other files, per region method and
    number of processes, side by side with the bare floor (decode + one SSCD pass + one exact
    search per file, in this process). In one process, per check: SSCD passes made, time in
    them, time verifying."""
    refs = scratch / "refs"
    refs.mkdir()
    for path in files[queries_count:]:
        shutil.copyfile(path, refs / path.name)
    queries = files[:queries_count]
    base = scratch / "base"
    workspace = Workspace.create(base, environ={})
    reference_sets.create(workspace, "bench", [refs], rights="third-party")
    workspace.close()
    results: dict[str, Any] = {"references": len(files) - queries_count}

    # The floor: what no check can beat.
    workspace = Workspace.open(base, environ={})
    sscd = workspace.detectors()["sscd"]
    index = load_index(base / "indexes" / "bench", "sscd", sscd.spec)  # type: ignore[union-attr]
    start = time.perf_counter()
    for path in queries:
        pixels = decode_image(path.read_bytes(), max_pixels=150_000_000).pixels
        index.search(sscd.embed([pixels]), 5)  # type: ignore[union-attr]
    floor = time.perf_counter() - start
    workspace.close()
    results["floor_files_per_s"] = len(queries) / floor

    for name, (environ, jobs) in CHECK_VARIANTS.items():
        copy = scratch / f"ws-{name}"
        shutil.copytree(base, copy)
        folder = scratch / f"queries-{name}"
        folder.mkdir()
        for path in queries:
            shutil.copyfile(path, folder / path.name)
        report, total, spent = _timed_register(copy, folder, environ, jobs)
        count = len(report.results)
        verdicts = [r.check.verdict for r in report.results if r.check is not None]
        results[name] = {
            "files_per_s": count / total,
            "ratio_to_floor": (count / total) / results["floor_files_per_s"],
            "verdicts": {v: verdicts.count(v) for v in ("clear", "review", "high")},
        }
        if jobs == 1:
            # Registration stores hashes only: every SSCD pass counted is the check's.
            per_pass = spent["pass_seconds"] / max(1, spent["passes"])
            results[name] |= {
                "sscd_passes_per_check": spent["passes"] / count,
                "check_cost_in_passes_excluding_verification": (
                    (total - spent["verify_seconds"]) / count / per_pass
                ),
                "verification_ms_per_file": spent["verify_seconds"] * 1000 / count,
            }
        shutil.rmtree(copy)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="queries registered + checked")
    parser.add_argument("--refs", type=int, default=500, help="references ingested first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--check-refs",
        type=int,
        default=3000,
        help="reference set of the register + check comparison (0: skip it)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed.json")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print("no corpus; run benchmarks/corpus.py", file=sys.stderr)
        return 1
    files = sample_images(args.images + args.refs)
    pixels = [
        decode_image(p.read_bytes(), max_pixels=150_000_000).pixels for p in files[: args.images]
    ]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        checkpoint = random_clip_checkpoint(scratch)
        for number in range(args.repeats):
            run = model_figures(pixels, checkpoint)
            run["end_to_end"] = {}
            setups = {"phash+sscd": {"PROVENANCE_DETECTORS": "phash,sscd"}}
            if checkpoint is not None:
                # Random weights embed every picture alike, so CLIP would call every query
                # high and spare it the region search; lines it cannot reach keep the work
                # what real weights would do on unrelated pictures.
                setups["phash+sscd+clip"] = {
                    "PROVENANCE_DETECTORS": "phash,sscd,clip",
                    "PROVENANCE_CLIP_CHECKPOINT": str(checkpoint),
                    "PROVENANCE_CLIP_HIGH": "2",
                    "PROVENANCE_CLIP_REVIEW": "2",
                }
            for name, environ in setups.items():
                folder = scratch / f"run{number}-{name}"
                folder.mkdir()
                run["end_to_end"][name] = end_to_end(folder, files, args.images, environ)
                shutil.rmtree(folder)
            if args.check_refs:
                folder = scratch / f"run{number}-check"
                folder.mkdir()
                everything = sample_images(args.images + args.check_refs)
                run["check_cost"] = check_cost(folder, everything, args.images)
                shutil.rmtree(folder)
            runs.append(run)
            print(f"run {number + 1}/{args.repeats}: {json.dumps(run)}", flush=True)
    summary = median_tree(runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "schema": "provenance.benchmark.speed/3",
                "date": dt.date.today().isoformat(),
                "command": f"python benchmarks/speed.py --images {args.images} "
                f"--refs {args.refs} --check-refs {args.check_refs} --repeats {args.repeats}",
                "machine": describe(),
                "repeats": args.repeats,
                "note": "medians over the runs; each run measures limit and throughput together",
                **summary,
            },
            indent=2,
        )
        + "\n"
    )
    print(json.dumps(summary, indent=1))
    return 0


def random_clip_checkpoint(folder: Path) -> Path | None:
    """Random ViT-B-32 weights saved locally (same arithmetic as real ones); None without
    torch/open_clip."""
    try:
        import open_clip
        import torch
    except ImportError:
        return None
    checkpoint = folder / "vit-b-32-random.pt"
    torch.manual_seed(0)
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), checkpoint)
    return checkpoint


if __name__ == "__main__":
    sys.exit(main())
