"""The one image intake: every real-world shape comes out upright, 8-bit sRGB RGB, at the displayed size."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from tests.conftest import EXAMPLES
from tests.photo_files import (
    SRGB_BLUE, SRGB_GREEN, SRGB_RED, close, quadrants, rgb_profile, samples, swapped_primaries_profile, top_left,
)
from thinkedit.tools.errors import BadInputError, ImageTooLargeError
from thinkedit.tools.images import intake_notes, load_image

SAMPLES = {s.name: s for s in samples()}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_shape_reads_as_a_viewer_shows_it(name: str) -> None:
    sample = SAMPLES[name]
    image = load_image(sample.data)
    assert image.mode == "RGB" and image.size == sample.size
    if sample.colour is not None:
        assert close(top_left(image), sample.colour), (top_left(image), sample.colour)
    notes = " | ".join(intake_notes(image))
    for expected in sample.notes:
        assert expected in notes, notes


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_gives_the_displayed_picture(orientation: int) -> None:
    """Every quadrant lands where a viewer shows it (the stored pixels are turned or mirrored)."""
    sample = SAMPLES[f"orientation-{orientation}.jpg"]
    stored = Image.open(io.BytesIO(sample.data))
    assert (stored.size != sample.size) == (orientation >= 5)
    image = load_image(sample.data)
    diff = ImageChops.difference(image, quadrants())
    assert max(ImageStat.Stat(diff).mean) < 8, ImageStat.Stat(diff).mean  # a wrong turn differs by ~100


def test_a_png_with_a_damaged_exif_chunk_is_read_for_its_pixels() -> None:
    import struct
    import zlib

    data = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(data, format="PNG")
    png = data.getvalue()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    at = png.index(b"IDAT") - 4  # an eXIf chunk that is not TIFF, before the pixels, as a broken tool writes it
    image = load_image(png[:at] + chunk(b"eXIf", b"garbage, not TIFF") + png[at:], cache=False)
    assert image.size == (8, 6) and close(top_left(image), (200, 10, 10))


def test_a_long_animation_is_read_for_its_first_frame_without_counting_every_frame() -> None:
    from thinkedit.tools import images

    frames = [Image.new("RGB", (4, 4), ("red", "blue")[i % 2]) for i in range(images.MAX_COUNTED_FRAMES + 50)]
    data = io.BytesIO()
    frames[0].save(data, format="GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)
    image = load_image(data.getvalue(), cache=False)
    assert close(top_left(image), (255, 0, 0))  # the first frame
    assert f"more than {images.MAX_COUNTED_FRAMES} frames" in " | ".join(intake_notes(image))


def one_pixel_frames(canvas: int, frames: int) -> bytes:
    """A GIF89a of ``frames`` one-pixel frames on a ``canvas`` x ``canvas`` screen: a few bytes a frame."""
    data = bytearray(b"GIF89a" + struct.pack("<HHBBB", canvas, canvas, 0xF0, 0, 0) + bytes([0, 0, 0, 255, 255, 255]))
    for i in range(frames):
        data += b"\x21\xf9\x04\x00\x00\x00\x00\x00"  # graphic control: no disposal, no delay
        data += b"\x2c" + struct.pack("<HHHHB", i % canvas, 0, 1, 1, 0)  # a 1x1 frame, no local palette
        data += b"\x02\x02\x44\x01\x00"  # its one pixel, LZW-coded
    return bytes(data + b"\x3b")


def test_frames_on_a_large_canvas_are_counted_only_while_their_pixels_stay_bounded() -> None:
    """Each seek composes a frame on the whole canvas: frames are counted only up to a bound on canvas pixels."""
    from thinkedit.tools import images

    image = load_image(one_pixel_frames(4096, 200), max_pixels=images.SERVER_MAX_PIXELS, cache=False)
    assert image.size == (4096, 4096)
    most = images.MAX_COUNTED_FRAME_PIXELS // (4096 * 4096)
    assert intake_notes(image) == [f"animated image with more than {most} frames: the first frame was used"]
    small = load_image(one_pixel_frames(64, 200), cache=False)
    assert intake_notes(small) == ["animated image with 200 frames: the first frame was used"]


def tagged(image: Image.Image, icc: bytes) -> bytes:
    """Return ``image`` as PNG bytes carrying the ICC profile ``icc``."""
    data = io.BytesIO()
    image.save(data, "PNG", icc_profile=icc)
    return data.getvalue()


def test_icc_profile_is_applied_not_dropped() -> None:
    """Red pixels in a profile whose red primary is sRGB's green must come out green."""
    image = load_image(tagged(Image.new("RGB", (8, 8), (255, 0, 0)), swapped_primaries_profile()))
    assert close(image.getpixel((1, 1)), (0, 255, 0), tolerance=8)


def gradient() -> Image.Image:
    """Return a 256x48 picture holding every grey and ramps of each primary (where profiles differ most)."""
    image = Image.new("RGB", (256, 48))
    image.putdata([(x, x, x) for x in range(256)] * 12 + [(x, 0, 0) for x in range(256)] * 12
                  + [(0, x, 0) for x in range(256)] * 12 + [(0, 0, x) for x in range(256)] * 12)
    return image


def test_an_srgb_profile_leaves_every_pixel_as_stored() -> None:
    """Most photos are tagged sRGB: they read exactly as their stored pixels, with no conversion note."""
    picture = gradient()
    for icc in (ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
                Image.open(EXAMPLES / "chelsea.png").info["icc_profile"]):  # the HP/IEC profile cameras embed
        image = load_image(tagged(picture, icc))
        assert ImageChops.difference(image, picture).getbbox() is None
        assert intake_notes(image) == []


def test_a_profile_near_srgb_is_still_converted() -> None:
    """sRGB's primaries with a 1.8 gamma (old Mac displays) must not pass for sRGB: mid-greys lighten."""
    image = load_image(tagged(gradient(), rgb_profile("sRGB primaries, gamma 1.8", SRGB_RED, SRGB_GREEN, SRGB_BLUE,
                                                      gamma=1.8)))
    assert image.getpixel((128, 0))[0] > 128 + 10, image.getpixel((128, 0))
    assert "embedded ICC profile converted to sRGB" in intake_notes(image)


def test_a_still_image_has_no_notes() -> None:
    assert intake_notes(load_image(SAMPLES["orientation-1.jpg"].data)) == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b"hello, I am a text file", "not an image"),
        (SAMPLES["orientation-6.jpg"].data[:400], "truncated"),
        (SAMPLES["phone.heic"].data[:300], "image"),
    ],
)
def test_bad_files_stay_clear_errors(data: bytes, problem: str) -> None:
    with pytest.raises(BadInputError, match=problem):
        load_image(data)


def test_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError, match="too large"):
        load_image(SAMPLES["phone.heic"].data, max_pixels=100)


def test_the_same_file_is_decoded_once_and_each_caller_gets_its_own_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo submitted again comes from the intake cache, as it first came out, whatever the first caller did."""
    import thinkedit.tools.images as images

    data = SAMPLES["orientation-6.jpg"].data + b"\0"  # bytes no other test loads, so the first load decodes
    decodes = []
    decode = images._decode
    monkeypatch.setattr(images, "_decode", lambda *a: decodes.append(a) or decode(*a))
    first = load_image(data)
    expected, notes = first.copy(), intake_notes(first)
    assert notes and len(decodes) == 1
    first.paste((255, 0, 255), (0, 0, *first.size))  # the caller's image is its own to change
    first.info[images.NOTES_KEY].append("changed by the caller")
    second = load_image(data)
    assert len(decodes) == 1, "the same bytes were decoded again"
    assert second is not first and ImageChops.difference(second, expected).getbbox() is None
    assert intake_notes(second) == notes
    assert load_image(data, max_pixels=expected.width * expected.height).size == expected.size
    with pytest.raises(ImageTooLargeError, match="too large"):  # a smaller limit is still applied to a known file
        load_image(data, max_pixels=expected.width * expected.height - 1)
    other = load_image(SAMPLES["orientation-1.jpg"].data + b"\0")  # the same picture, stored upright
    assert len(decodes) == 2 and intake_notes(other) == []
    once = SAMPLES["orientation-3.jpg"].data + b"\0"  # an image seen once (an editor's answer): not kept
    load_image(once, cache=False)
    load_image(once, cache=False)
    load_image(once)
    assert len(decodes) == 5


async def test_langgraph_input_path_goes_through_the_intake(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A LangGraph input naming a phone photo by path: the source is stored upright and the run says why."""
    from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
    from tests.test_graph import make_settings
    from thinkedit.agent.graph import build_graph
    from thinkedit.agent.state import RunState
    from thinkedit.agent.view import run_view

    path = tmp_path / "phone.jpg"
    path.write_bytes(SAMPLES["orientation-6.jpg"].data)
    editor = ScriptedEditor()
    graph = build_graph(FakeBackends(editor, ScriptedThinker(verdicts((9, 9, "x")))))
    out = await graph.ainvoke({"image": str(path), "instruction": "hat"}, {"configurable": {"thread_id": "intake-1"}},
                              context=make_settings(data_dir))
    state = RunState.model_validate(out)
    assert state.source.size == SAMPLES["orientation-6.jpg"].size and editor.calls[0].image.size == state.source.size
    assert state.final_image.size == state.source.size
    assert run_view(state, state.settings).trajectory()["notes"] == ["EXIF orientation 6 applied"]


async def test_a_pil_image_given_to_the_runner_is_read_as_the_same_picture_in_a_file(data_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The Python API takes PIL images: transparency, premultiplied alpha and 16-bit grey come out as from a file."""
    from tests.fakes import ScriptedEditor, ScriptedThinker, verdicts
    from tests.test_graph import make_runner, make_settings

    clear = Image.new("RGBA", (16, 8), (0, 0, 0, 0))  # transparent black: a viewer shows it white
    clear.paste((200, 10, 10, 255), (0, 0, 8, 8))
    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(verdicts((9, 9, "x"))))
    settings = make_settings(data_dir)
    for picture in (clear, clear.convert("RGBa"), Image.new("La", (4, 4)), Image.new("I;16", (4, 4), 65535)):
        buffer = io.BytesIO()
        picture.convert("RGBA" if picture.mode == "RGBa" else "LA" if picture.mode == "La" else picture.mode).save(
            buffer, "PNG")
        from_file = load_image(buffer.getvalue(), cache=False)
        record = runner.prepare(picture, "hat", settings, references=[picture])
        stored = runner.store.get(record.source)
        assert ImageChops.difference(stored, from_file).getbbox() is None, picture.mode
        assert record.notes == intake_notes(from_file) and record.references == [record.source]
    assert clear.mode == "RGBA" and clear.getpixel((12, 4)) == (0, 0, 0, 0)  # the caller's image is left as it was
    assert runner.store.get(runner.prepare(clear, "hat", settings).source).getpixel((12, 4)) == (255, 255, 255)
