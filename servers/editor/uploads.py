"""Read and check the multipart body of an edit request: fields by schema, the image bytes as sent."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from thinkedit.servers.editor.schemas import IMAGE_FIELDS, EditForm
from thinkedit.servers.bodylimit import BodyTooLarge
from thinkedit.servers.httputil import APIError, clip, describe_errors
from thinkedit.servers.timeouts import BodyReadTimeout

#: Text fields are short; anything longer than this is not a prompt or a setting.
MAX_FIELD_BYTES = 64 * 1024
#: Most ``image`` parts one request may carry (the source and references; the model may take fewer).
MAX_IMAGE_PARTS = 4


class ClientGone(Exception):
    """Signal that the client hung up before its upload was complete (nothing to answer)."""


@dataclass
class EditUpload:
    """Hold a parsed edit request: its validated fields and the raw image bytes."""

    form: EditForm
    image_bytes: bytes
    #: Further ``image`` parts, in order: reference images (vLLM-Omni accepts several ``image`` parts too).
    reference_bytes: list[bytes] = field(default_factory=list)


async def read_edit_upload(request: Request) -> EditUpload:
    """Parse the multipart body into an ``EditUpload``; raise ``APIError`` 400/413/422 on bad input."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise APIError(400, "send the edit as multipart/form-data (an 'image' file part and text fields)")
    try:
        form = await request.form(max_files=MAX_IMAGE_PARTS, max_fields=64, max_part_size=MAX_FIELD_BYTES)
    except BodyTooLarge as exc:
        raise APIError(413, str(exc), code="request_too_large") from None
    except BodyReadTimeout as exc:
        raise APIError(408, str(exc), code="request_timeout", headers={"Connection": "close"}) from None
    except ClientDisconnect:
        raise ClientGone() from None
    except HTTPException as exc:
        raise APIError(400, f"malformed multipart body: {exc.detail}") from None
    try:
        fields: dict[str, str] = {}
        images: list[UploadFile] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name not in IMAGE_FIELDS:
                    raise APIError(422, f"unknown file field {clip(name)!r}; send the image as 'image'", param=clip(name))
                images.append(value)
            elif name in fields:
                raise APIError(422, f"field {clip(name)!r} was sent more than once", param=clip(name))
            elif name in IMAGE_FIELDS:
                raise APIError(400, f"{name!r} must be a file part holding the image, not a text field", param=name)
            else:
                fields[name] = value
        if not images:
            raise APIError(422, "missing field 'image' (the image to edit, as a file part)", param="image")
        if len(images) > MAX_IMAGE_PARTS:
            raise APIError(422, f"send at most {MAX_IMAGE_PARTS} 'image' parts (the image and its references)",
                           param="image")
        try:
            parsed = EditForm.model_validate(fields)
        except ValidationError as exc:
            message, param = describe_errors(exc.errors())
            raise APIError(422, message, param=param) from None
        data = [await part.read() for part in images]
    finally:
        await form.close()
    return EditUpload(form=parsed, image_bytes=data[0], reference_bytes=data[1:])
