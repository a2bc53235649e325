"""Interactive API docs (Swagger UI) served from files installed with the server, never from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from jsDelivr, so it is blank
on a machine without internet access (a GPU node, an air-gapped lab). The ``swagger-ui-bundle-v2``
package (Apache-2.0, the upstream Swagger UI release files) ships them; we mount its folder and
point FastAPI's page builder at it. Build the app with ``docs_url=None, redoc_url=None`` and call
``install_local_docs``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"


def install_local_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` with its assets under ``/docs/assets``, so it renders offline."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """Render the API page; every URL in it is this server's (behind a proxy, under its root path)."""
        root = request.scope.get("root_path", "").rstrip("/")
        assets = f"{root}{ASSETS_PATH}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} — API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon-32x32.png",
            # Swagger UI's validator badge would send the spec to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
