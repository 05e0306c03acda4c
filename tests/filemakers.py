"""Write image files the way generative tools write them, from the real sample photos.

Each writer follows the tool's own saving code: AUTOMATIC1111 puts its infotext in a PNG
``parameters`` text chunk (``PngInfo.add_text``) or, for JPEG/WebP, in EXIF UserComment via
``piexif.helper.UserComment.dump(..., encoding="unicode")``; ComfyUI's SaveImage writes
``prompt`` and ``workflow`` text chunks holding JSON; InvokeAI 4.x writes
``invokeai_metadata`` and ``invokeai_graph`` chunks.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import piexif
import piexif.helper
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from PIL.PngImagePlugin import PngInfo

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "images"
# The sample photographs (the folder also holds their attributions.json).
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in {".jpg", ".png"})

A1111_PROMPT = "a cinematic matte painting of a lighthouse at dusk, volumetric light"
A1111_NEGATIVE = "blurry, lowres, watermark"
A1111_INFOTEXT = (
    f"{A1111_PROMPT}\n"
    f"Negative prompt: {A1111_NEGATIVE}\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567890, Size: 512x512, "
    "Model hash: 31e35c80fc, Model: sd_xl_base_1.0, Denoising strength: 0.45, "
    "Version: v1.6.0"
)

COMFY_POSITIVE = "beautiful scenery nature glass bottle landscape, purple galaxy bottle"
COMFY_NEGATIVE = "text, watermark"
COMFY_SEED = 156680208700286
# ComfyUI's default text-to-image graph in API format, as SaveImage embeds it.
COMFY_PROMPT = {
    "3": {
        "inputs": {
            "seed": COMFY_SEED,
            "steps": 20,
            "cfg": 8,
            "sampler_name": "euler",
            "scheduler": "normal",
            "denoise": 1,
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
            "latent_image": ["5", 0],
        },
        "class_type": "KSampler",
    },
    "4": {
        "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"},
        "class_type": "CheckpointLoaderSimple",
    },
    "5": {
        "inputs": {"width": 512, "height": 512, "batch_size": 1},
        "class_type": "EmptyLatentImage",
    },
    "6": {"inputs": {"text": COMFY_POSITIVE, "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "7": {"inputs": {"text": COMFY_NEGATIVE, "clip": ["4", 1]}, "class_type": "CLIPTextEncode"},
    "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode"},
    "9": {"inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}, "class_type": "SaveImage"},
}
# The editor graph: [link id, from node, from slot, to node, to slot, type].
COMFY_WORKFLOW = {
    "last_node_id": 9,
    "last_link_id": 9,
    "nodes": [
        {"id": int(node_id), "type": node["class_type"], "mode": 0}
        for node_id, node in COMFY_PROMPT.items()
    ],
    "links": [
        [1, 4, 0, 3, 0, "MODEL"],
        [2, 4, 1, 6, 0, "CLIP"],
        [3, 4, 1, 7, 0, "CLIP"],
        [4, 6, 0, 3, 1, "CONDITIONING"],
        [5, 7, 0, 3, 2, "CONDITIONING"],
        [6, 5, 0, 3, 3, "LATENT"],
        [7, 3, 0, 8, 0, "LATENT"],
        [8, 4, 2, 8, 1, "VAE"],
        [9, 8, 0, 9, 0, "IMAGE"],
    ],
    "groups": [],
    "config": {},
    "extra": {},
    "version": 0.4,
}

INVOKE_METADATA = {
    "generation_mode": "txt2img",
    "positive_prompt": "a red barn in a snowy field, golden hour",
    "negative_prompt": "people, text",
    "width": 512,
    "height": 512,
    "seed": 3141592653,
    "rand_device": "cpu",
    "cfg_scale": 7.5,
    "cfg_rescale_multiplier": 0,
    "steps": 30,
    "scheduler": "euler",
    "model": {
        "key": "6f3e8c1a-model-key",
        "hash": "blake3:9d1c0ffee",
        "name": "stable-diffusion-v1-5",
        "base": "sd-1",
        "type": "main",
    },
    "app_version": "4.2.9",
}


def sample(name: str) -> Image.Image:
    """A sample photo, loaded and converted to RGB."""
    with Image.open(SAMPLES / name) as image:
        return image.convert("RGB")


def write_a1111_png(path: Path, image: Image.Image, infotext: str = A1111_INFOTEXT) -> Path:
    info = PngInfo()
    info.add_text("parameters", infotext)
    image.save(path, pnginfo=info)
    return path


def write_a1111_jpeg(
    path: Path, image: Image.Image, infotext: str = A1111_INFOTEXT, fmt: str = "JPEG"
) -> Path:
    """A1111 writes JPEG and WebP alike: the infotext in EXIF UserComment."""
    exif = piexif.dump(
        {
            "Exif": {
                piexif.ExifIFD.UserComment: piexif.helper.UserComment.dump(
                    infotext, encoding="unicode"
                )
            }
        }
    )
    image.save(path, format=fmt, quality=90, exif=exif)
    return path


def write_comfyui_png(path: Path, image: Image.Image, *, with_workflow: bool = True) -> Path:
    """As SaveImage writes it; ``with_workflow=False`` as images saved through the API are."""
    info = PngInfo()
    info.add_text("prompt", json.dumps(COMFY_PROMPT))
    if with_workflow:
        info.add_text("workflow", json.dumps(COMFY_WORKFLOW))
    image.save(path, pnginfo=info)
    return path


def write_invokeai_png(path: Path, image: Image.Image, metadata: dict | None = None) -> Path:
    info = PngInfo()
    info.add_text("invokeai_metadata", json.dumps(metadata or INVOKE_METADATA))
    info.add_text("invokeai_graph", json.dumps({"id": "graph", "nodes": {}, "edges": []}))
    image.save(path, pnginfo=info)
    return path


def write_exif_jpeg(
    path: Path, image: Image.Image, software: str, artist: str, orientation: int = 1
) -> Path:
    exif = Image.Exif()
    exif[0x0131] = software
    exif[0x013B] = artist
    exif[0x0112] = orientation
    image.save(path, format="JPEG", quality=92, exif=exif.tobytes())
    return path


XMP_PACKET = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmp:CreatorTool="Adobe Firefly Image 3"
    Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def write_xmp_jpeg(path: Path, image: Image.Image, packet: str = XMP_PACKET) -> Path:
    image.save(path, format="JPEG", quality=90, xmp=packet.encode("utf-8"))
    return path


def write_xmp_png(path: Path, image: Image.Image, packet: str = XMP_PACKET) -> Path:
    """XMP in a PNG: an iTXt chunk keyed ``XML:com.adobe.xmp``, as Adobe tools write it."""
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet)
    image.save(path, pnginfo=info)
    return path


# Known edits of a picture, as copies of a reference are made in practice.


def jpeg_reencode(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def overlay_text(image: Image.Image) -> Image.Image:
    edited = image.copy()
    draw = ImageDraw.Draw(edited)
    for row in range(0, image.height, max(1, image.height // 6)):
        draw.text((10, row), "SHOT 010 v003  TEMP  NOT FOR DISTRIBUTION", fill=(255, 255, 0))
    return edited


def composite_25(image: Image.Image) -> Image.Image:
    """The picture at 25 % of the area of a larger, unrelated scene (a real photo)."""
    scene = sample("hubble_deep_field.jpg").resize((image.width * 2, image.height * 2))
    scene.paste(image, (image.width // 2 + 40, image.height // 2 + 30))
    return scene


KNOWN_EDITS = {
    "resize_50": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "jpeg_q40": lambda im: jpeg_reencode(im, 40),
    "crop_50": lambda im: im.crop(
        (im.width // 4, im.height // 4, 3 * im.width // 4, 3 * im.height // 4)
    ),
    "mirror": ImageOps.mirror,
    "colour_shift": lambda im: ImageEnhance.Color(ImageEnhance.Brightness(im).enhance(1.2)).enhance(
        0.5
    ),
    "text_overlay": overlay_text,
}
