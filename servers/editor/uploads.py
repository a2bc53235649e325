"""Read and check the multipart body of an edit request: fields by schema, the image by content."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from servers.editor.schemas import IMAGE_FIELDS, EditForm
from servers.httputil import APIError, BodyTooLarge, describe_errors
from tools.errors import BadInputError
from tools.images import load_image

#: Text fields are short; anything longer than this is not a prompt or a setting.
MAX_FIELD_BYTES = 64 * 1024


@dataclass
class EditUpload:
    """Hold a parsed edit request: its validated fields and the raw image bytes."""

    form: EditForm
    image_bytes: bytes


async def read_edit_upload(request: Request) -> EditUpload:
    """Parse the multipart body into an ``EditUpload``; raise ``APIError`` 400/413/422 on bad input."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise APIError(400, "send the edit as multipart/form-data (an 'image' file part and text fields)")
    try:
        form = await request.form(max_files=4, max_fields=64, max_part_size=MAX_FIELD_BYTES)
    except BodyTooLarge as exc:
        raise APIError(413, str(exc), code="request_too_large") from None
    except HTTPException as exc:
        raise APIError(400, f"malformed multipart body: {exc.detail}") from None
    try:
        fields: dict[str, str] = {}
        images: list[UploadFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in IMAGE_FIELDS:
                    raise APIError(422, f"unknown file field {name!r}; send the image as 'image'", param=name)
                images.append(value)
            elif name in fields:
                raise APIError(422, f"field {name!r} was sent more than once", param=name)
            elif name in IMAGE_FIELDS:
                raise APIError(400, f"{name!r} must be a file part holding the image, not a text field", param=name)
            else:
                fields[name] = value
        if not images:
            raise APIError(422, "missing field 'image' (the image to edit, as a file part)", param="image")
        if len(images) > 1:
            raise APIError(422, "this server edits one image per request; send a single 'image'", param="image")
        try:
            parsed = EditForm.model_validate(fields)
        except ValidationError as exc:
            message, param = describe_errors(exc.errors())
            raise APIError(422, message, param=param) from None
        data = await images[0].read()
    finally:
        await form.close()
    return EditUpload(form=parsed, image_bytes=data)


def decode_image(data: bytes, max_pixels: int, param: str = "image") -> Image.Image:
    """Decode an uploaded image; too many pixels is 413, anything unreadable is 400, with the reason."""
    if not data:
        raise APIError(400, "the image is empty", param=param, code="invalid_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
    except Image.DecompressionBombError as exc:
        message = f"image rejected as a decompression bomb: {exc}"
        raise APIError(413, message, param=param, code="image_too_large") from None
    except UnidentifiedImageError:
        message = "the uploaded data is not an image (PNG, JPEG or WebP expected)"
        raise APIError(400, message, param=param, code="invalid_image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise APIError(400, f"the image cannot be read: {exc}", param=param, code="invalid_image") from None
    if width * height > max_pixels:
        raise APIError(
            413,
            f"image is too large: {width}x{height} = {width * height} pixels, the limit is {max_pixels}",
            param=param,
            code="image_too_large",
        )
    try:
        return load_image(data, max_pixels=max_pixels)
    except BadInputError as exc:
        raise APIError(400, str(exc), param=param, code="invalid_image") from None
