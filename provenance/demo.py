"""The demo workspace: a reference set of real photographs, a batch of "generated" assets
that recreate some of them (crop, resize, recolour, text overlay, composite, mirror) beside
unrelated pictures, and a generated animatic (a movie) with the rocket still in frames
24-59, all registered and checked offline.

The generated files carry generation metadata the way the tools write it (an AUTOMATIC1111
``parameters`` chunk, a ComfyUI ``prompt`` graph, or a sidecar), so the demo also shows
metadata extraction.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from PIL.PngImagePlugin import PngInfo

from provenance import clearance, reference_sets, registration, reviews, signatures, users
from provenance.checking import CheckResult
from provenance.config import WORKSPACE_FILE, with_settings
from provenance.errors import InvalidInput, WorkspaceExists
from provenance.registration import RegisterRequest
from provenance.signing import credentials, keys
from provenance.workspace import Workspace

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
REFERENCE_SET = "demo-studio-ip"
# A still the pipeline fetched from a generator vendor's service: the vendor signed it with
# Content Credentials (C2PA), as Firefly or OpenAI's image models do; the pipeline's
# sidecar adds the prompt.
VENDOR_SIGNED = "sh090_path_v001.png"
VENDOR = ("Demo Imagine", "2.0", "Demo Imagine image model 2")


@dataclass(frozen=True)
class DemoAsset:
    """One generated file: how it is made, and what it should be judged."""

    file: str
    source: str
    make: Callable[[Image.Image, Path], Image.Image]
    use: str
    prompt: str
    tool: str
    recreates: str | None


def _crop(image: Image.Image, _: Path) -> Image.Image:
    w, h = image.size
    return image.crop((w // 4, h // 4, 3 * w // 4, 3 * h // 4))


def _resize(image: Image.Image, _: Path) -> Image.Image:
    return image.resize((image.width * 2 // 5, image.height * 2 // 5), Image.Resampling.LANCZOS)


def _recolour(image: Image.Image, _: Path) -> Image.Image:
    warmer = ImageEnhance.Color(image).enhance(0.4)
    return ImageEnhance.Brightness(warmer).enhance(1.15)


def _overlay_text(image: Image.Image, _: Path) -> Image.Image:
    edited = image.copy()
    draw = ImageDraw.Draw(edited)
    for row in range(8, image.height, max(1, image.height // 7)):
        draw.text((12, row), "MISSION CONTROL  //  TAKE 3  //  PREVIZ", fill=(255, 220, 0))
    return edited


def _composite(image: Image.Image, samples: Path) -> Image.Image:
    with Image.open(samples / "unrelated" / "brick.jpg") as brick:
        scene = brick.convert("RGB").resize((image.width * 2, image.height * 2))
    scene.paste(image, (image.width - 30, image.height // 2))
    return scene


def _mirror(image: Image.Image, _: Path) -> Image.Image:
    return ImageOps.mirror(image)


def _as_is(image: Image.Image, _: Path) -> Image.Image:
    return image


ASSETS = (
    DemoAsset(
        "sh010_bg_v001.png",
        "images/coffee.jpg",
        _crop,
        "background",
        "a cup of espresso on a wooden cafe table, morning light",
        "automatic1111",
        "coffee.jpg",
    ),
    DemoAsset(
        "sh020_key_v002.png",
        "images/astronaut.jpg",
        _resize,
        "key-creative",
        "portrait of an astronaut in an orange flight suit, flag behind",
        "comfyui",
        "astronaut.jpg",
    ),
    DemoAsset(
        "sh030_cat_v001.png",
        "images/chelsea.png",
        _recolour,
        "background",
        "a tabby cat looking up, muted palette",
        "automatic1111",
        "chelsea.png",
    ),
    DemoAsset(
        "sh040_launch_v003.png",
        "images/rocket.jpg",
        _overlay_text,
        "previz",
        "rocket launch at dawn, smoke plume, text overlay",
        "comfyui",
        "rocket.jpg",
    ),
    DemoAsset(
        "sh050_wall_v001.png",
        "images/camera.png",
        _composite,
        "final-deliverable",
        "brick wall with a framed black and white photograph",
        "sidecar",
        "camera.png",
    ),
    DemoAsset(
        "sh060_sky_v001.png",
        "images/hubble_deep_field.jpg",
        _mirror,
        "ideation",
        "deep space, many small galaxies",
        "sidecar",
        "hubble_deep_field.jpg",
    ),
    DemoAsset(
        "sh070_ground_v001.png",
        "unrelated/grass.jpg",
        _as_is,
        "background",
        "close-up of grass, black and white",
        "automatic1111",
        None,
    ),
    DemoAsset(
        "sh080_coins_v002.png",
        "unrelated/coins.jpg",
        _as_is,
        "ideation",
        "ancient coins on a dark cloth",
        "comfyui",
        None,
    ),
    DemoAsset(
        "sh090_path_v001.png",
        "unrelated/gravel.jpg",
        _as_is,
        "background",
        "gravel path texture",
        "sidecar",
        None,
    ),
    DemoAsset(
        "sh100_horse_v001.png",
        "unrelated/horse.png",
        _as_is,
        "ideation",
        "silhouette of a horse, flat graphic",
        "automatic1111",
        None,
    ),
)


def _write_with_metadata(image: Image.Image, path: Path, asset: DemoAsset, seed: int) -> None:
    if asset.tool == "automatic1111":
        info = PngInfo()
        info.add_text(
            "parameters",
            f"{asset.prompt}\nNegative prompt: watermark, text\n"
            f"Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: {seed}, "
            f"Size: {image.width}x{image.height}, Model: sd_xl_base_1.0, Version: v1.10.1",
        )
        image.save(path, pnginfo=info)
    elif asset.tool == "comfyui":
        graph = {
            "3": {
                "class_type": "KSampler",
                "inputs": {
                    "seed": seed,
                    "steps": 20,
                    "cfg": 7,
                    "sampler_name": "euler",
                    "scheduler": "normal",
                    "denoise": 1,
                    "model": ["4", 0],
                    "positive": ["6", 0],
                    "negative": ["7", 0],
                    "latent_image": ["5", 0],
                },
            },
            "4": {
                "class_type": "CheckpointLoaderSimple",
                "inputs": {"ckpt_name": "flux1-dev.safetensors"},
            },
            "5": {
                "class_type": "EmptyLatentImage",
                "inputs": {"width": image.width, "height": image.height, "batch_size": 1},
            },
            "6": {
                "class_type": "CLIPTextEncode",
                "inputs": {"text": asset.prompt, "clip": ["4", 1]},
            },
            "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        }
        info = PngInfo()
        info.add_text("prompt", json.dumps(graph))
        image.save(path, pnginfo=info)
    else:
        image.save(path)
        sidecar = {
            "schema": "provenance.sidecar/1",
            "tool": "in-house-pipeline",
            "tool_version": "2.3",
            "model": "studio-diffusion-xl",
            "prompt": asset.prompt,
            "seed": seed,
            "settings": {"steps": 30, "guidance": 5.5},
        }
        path.with_name(path.name + ".json").write_text(json.dumps(sidecar, indent=2))


# A generated animatic: an unrelated ground plate, then the rocket still pushed in on (the
# recreation, frames 24-59), then grass. Registered as one movie; its check names the range.
MOVIE = DemoAsset(
    "sh110_launch_anim_v001.mp4",
    "images/rocket.jpg",
    lambda image, _: image,
    "previz",
    "animatic: gravel path, then a rocket launch at dawn, then grass",
    "in-house-video",
    "rocket.jpg",
)
MOVIE_SIZE = (640, 360)


def _write_movie(samples: Path, path: Path, seed: int) -> None:
    """The animatic as H.264 in MP4 at 24 fps, with its prompt in the container's tags."""
    import av

    def framed(name: str, zoom: float) -> Image.Image:
        with Image.open(samples / name) as opened:
            picture = ImageOps.fit(opened.convert("RGB"), MOVIE_SIZE)
        width, height = picture.size
        crop_w, crop_h = int(width / zoom), int(height / zoom)
        left, top = (width - crop_w) // 2, (height - crop_h) // 2
        return picture.crop((left, top, left + crop_w, top + crop_h)).resize(MOVIE_SIZE)

    frames = (
        [framed("unrelated/gravel.jpg", 1.0 + i * 0.004) for i in range(24)]
        + [framed(MOVIE.source, 1.0 + i * 0.003) for i in range(36)]
        + [framed("unrelated/grass.jpg", 1.0 + i * 0.004) for i in range(24)]
    )
    with av.open(str(path), "w") as container:
        container.metadata["comment"] = f"{MOVIE.prompt} (seed {seed})"
        container.metadata["software"] = "studio-video-model 0.9"
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = MOVIE_SIZE
        stream.pix_fmt = "yuv420p"
        for picture in frames:
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    sidecar = {
        "schema": "provenance.sidecar/1",
        "tool": "studio-video-model",
        "tool_version": "0.9",
        "model": "studio-video-xl",
        "prompt": MOVIE.prompt,
        "seed": seed,
        "settings": {"frames": len(frames), "fps": 24},
    }
    path.with_name(path.name + ".json").write_text(json.dumps(sidecar, indent=2))


# The demo's team (local users, no tokens: `provenance users token NAME` issues one).
TEAM = (
    ("demo-admin", "admin"),
    ("demo-artist", "artist"),
    ("rosa", "reviewer"),
    ("lena", "legal"),
)
# Decisions the reviewer makes on three flagged assets; the rest stay in the queue.
DECISIONS = {
    "sh060_sky_v001.png": (
        "rosa",
        "approve",
        "Ideation only: the mirrored Hubble field is public domain and never leaves the "
        "art department.",
    ),
    "sh040_launch_v003.png": (
        "rosa",
        "needs-changes",
        "The rocket plate is a recognisable third-party still; replace it with our own "
        "plate before previz review.",
    ),
    "sh050_wall_v001.png": (
        "rosa",
        "escalate",
        "A recognisable third-party photograph inside a final deliverable: legal decides.",
    ),
}


@dataclass(frozen=True)
class DemoRow:
    asset_id: int
    file: str
    use: str
    recreates: str | None
    verdict: str
    best_match: str
    reason: dict[str, Any] | None
    # A movie: the frame ranges of its best match ("24-59").
    frames: str | None = None


def build_demo(directory: Path, samples: Path = SAMPLES) -> list[DemoRow]:
    """Create the demo workspace in ``directory`` (which must not exist or be empty)."""
    if not (samples / "images").is_dir() or not (samples / "unrelated").is_dir():
        raise InvalidInput(
            f"the demo needs the repository's samples folder ({samples}); run it from a checkout"
        )
    if directory.exists() and any(directory.iterdir()):
        raise WorkspaceExists(f"{directory} exists and is not empty; choose another folder")
    with Workspace.create(directory) as workspace:
        # The studio's development key signs the demo's exports; the vendor's root is on
        # its trust list.
        signatures.init_keys(workspace, organisation="Demo Studio")
    vendor = keys.make_development_keys(directory / "keys" / "vendor", "Demo Imagine Inc")
    settings = directory / WORKSPACE_FILE
    settings.write_text(
        with_settings(
            settings.read_text(encoding="utf-8"),
            {"trust_list": str(vendor.ca_certificate.relative_to(directory))},
        ),
        encoding="utf-8",
    )
    with Workspace.open(directory) as workspace:
        reference_sets.create(
            workspace,
            REFERENCE_SET,
            [samples / "images"],
            rights="third-party",
            holder="Demo rights holder",
            description="Stills the production does not own (public-domain stand-ins)",
            by="demo-rights-manager",
        )
        generated = directory / "generated"
        generated.mkdir()
        for seed, asset in enumerate(ASSETS, start=1000):
            with Image.open(samples / asset.source) as source:
                image = asset.make(source.convert("RGB"), samples)
            _write_with_metadata(image, generated / asset.file, asset, seed)
        unsigned = generated / f".unsigned-{VENDOR_SIGNED}"
        (generated / VENDOR_SIGNED).rename(unsigned)
        credentials.write_generated(
            unsigned,
            generated / VENDOR_SIGNED,
            key=keys.load_key(vendor.certificate, vendor.key, ""),
            generator=VENDOR[:2],
            model=VENDOR[2],
        )
        unsigned.unlink()
        for name, role in TEAM:
            users.add_user(workspace, name, role, by="demo-admin")
        rows = []
        for asset in ASSETS:
            request = RegisterRequest.from_flags(use=asset.use, production="Demo", by="demo-artist")
            [result] = registration.register(workspace, [generated / asset.file], request).results
            if result.asset is None or result.check is None:
                raise InvalidInput(f"demo asset {asset.file} failed: {result.error}")
            rows.append(_row(asset, result.asset, result.check))
        _write_movie(samples, generated / MOVIE.file, seed=2000)
        request = RegisterRequest.from_flags(use=MOVIE.use, production="Demo", by="demo-artist")
        [result] = registration.register(workspace, [generated / MOVIE.file], request).results
        if result.asset is None or result.check is None:
            raise InvalidInput(f"demo movie {MOVIE.file} failed: {result.error}")
        rows.append(_row(MOVIE, result.asset, result.check))
        ids = {row.file: row.asset_id for row in rows}
        for file, (who, decision, rationale) in DECISIONS.items():
            user = users.local_user(workspace, who)
            reviews.review(workspace, str(ids[file]), decision, rationale, user=user)
        _clearance(workspace, directory, ids)
    return rows


def _clearance(workspace: Workspace, directory: Path, ids: dict[str, int]) -> None:
    """Legal's side: two tools vetted (automatic1111 and comfyui stay unknown), expiry dates
    on the temporary material, the escalated composite revised by hand, licensed and
    approved in writing."""
    for tool in ("in-house-pipeline",):
        clearance.vet_tool(
            workspace,
            tool,
            vendor="the studio",
            version="2.3",
            stores_inputs="no",
            trains_on_inputs="no",
            enterprise_secured="yes",
            terms_url=None,
            notes="Runs on the studio's own render nodes.",
            by="lena",
        )
    for name, expires in (
        ("sh060_sky_v001.png", "2027-03-31"),
        ("sh040_launch_v003.png", "2026-12-31"),
    ):
        clearance.declare(
            workspace,
            str(ids[name]),
            personal_data=None,
            expires=expires,
            talent=None,
            by="demo-artist",
        )
    composite = str(ids["sh050_wall_v001.png"])
    reviews.review(
        workspace,
        composite,
        "approve",
        "The framed photograph is licensed for this use (agreement L-2291).",
        user=users.local_user(workspace, "lena"),
    )
    clearance.revise(
        workspace,
        composite,
        revised_by="demo-artist",
        how="Repainted the wall's texture and the frame by hand, regraded the shot in comp",
        by="demo-artist",
    )
    documents = directory / "documents"
    documents.mkdir()
    letter = documents / "approval-sh050.txt"
    letter.write_text(
        "From: studio contact\nSubject: sh050 wall, final deliverable\n\n"
        "Approved in writing for the final cut, with the licensed photograph.\n",
        encoding="utf-8",
    )
    clearance.approve(
        workspace,
        composite,
        approver="Studio contact (demo)",
        reference="email 'sh050 wall, final deliverable'",
        document=letter,
        by="lena",
    )
    # Consents of two stand-in performers: one runs out within weeks of the day the demo
    # is built, so the legal notebook has a consent to warn about.
    soon = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=40)).isoformat()
    for talent, scope, expires in (
        ("Mara Quinn (stand-in)", "likeness", soon),
        ("Theo Vance (stand-in)", "voice", "2028-12-31"),
    ):
        release = documents / f"consent-{talent.split()[0].lower()}.txt"
        release.write_text(
            f"{talent} consents to the use of their {scope} in the production Demo.\n",
            encoding="utf-8",
        )
        clearance.add_consent(
            workspace,
            talent=talent,
            scope=scope,
            production="Demo",
            document=release,
            expires=expires,
            by="lena",
        )


def _row(asset: DemoAsset, record: dict[str, Any], check: CheckResult) -> DemoRow:
    best = check.best_match if check.verdict != "clear" else None
    return DemoRow(
        asset_id=record["id"],
        file=asset.file,
        use=asset.use,
        recreates=asset.recreates,
        verdict=check.verdict,
        best_match=Path(best["source_path"]).name if best is not None else "-",
        reason=check.reasons[0] if check.reasons else None,
        frames=", ".join(
            f"{r['first']}-{r['last']}"
            for r in (check.frames or {}).get("ranges", [])
            if best is not None and r["item_id"] == best["item_id"]
        )
        or None,
    )
