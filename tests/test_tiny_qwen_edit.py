"""The tiny Qwen-Image-Edit-2509 ("Plus"): the real pipeline from configs, editing with reference images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.editors.diffusers_engine import DiffusersEditor
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import EditRequest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def editor(tmp_path_factory: pytest.TempPathFactory) -> DiffusersEditor:
    data = tmp_path_factory.mktemp("tiny-qwen")
    return DiffusersEditor(EditorConfig(model="tiny-qwen-image-edit-plus", max_side=256), data_dir=data)


def test_multi_image_edit_returns_the_source_size_and_reads_the_references(
    editor: DiffusersEditor, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Image.new("RGB", (300, 200), (200, 60, 60))
    hat, scarf = Image.new("RGB", (120, 160), (20, 20, 220)), Image.new("RGB", (90, 90), (20, 200, 20))
    pipe = editor.load()
    assert type(pipe).__name__ == "QwenImageEditPlusPipeline"
    request = EditRequest(image=source, instruction="put the hat from image 2 and the scarf from image 3 on it",
                          seed=1, references=[hat, scarf])
    job = editor.check_request(request)
    sizes = [im.size for im in job.images]
    assert sizes == [(256, 192), (64, 128), (64, 64)]  # bounded by max_side 256, sides multiples of 64
    seen: list[list[tuple[int, int]]] = []
    call = type(pipe).__call__

    def recording_call(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append([im.size for im in kwargs["image"]])
        return call(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "__call__", recording_call)
    first = editor.edit_batch([request])[0]
    assert first.image.size == (300, 200) and seen == [sizes]  # one call, all three images
    again = editor.edit_batch([request])[0]
    alone = editor.edit_batch([EditRequest(image=source, instruction=request.instruction, seed=1)])[0]
    assert seen[-1] == [sizes[0]]
    same = np.asarray(first.image, dtype=np.int16)
    assert np.abs(same - np.asarray(again.image, dtype=np.int16)).max() <= 1  # seeded
    assert np.abs(same - np.asarray(alone.image, dtype=np.int16)).max() > 0  # the references reach the model


def test_too_many_references_are_refused(editor: DiffusersEditor) -> None:
    picture = Image.new("RGB", (64, 64))
    with pytest.raises(BadInputError, match="takes 3 input image"):
        editor.check_request(EditRequest(image=picture, instruction="x", references=[picture] * 3))
    kontext = DiffusersEditor(EditorConfig(model="tiny-kontext"))
    with pytest.raises(BadInputError, match="qwen-image-edit-plus"):
        kontext.check_request(EditRequest(image=picture, instruction="x", references=[picture]))
