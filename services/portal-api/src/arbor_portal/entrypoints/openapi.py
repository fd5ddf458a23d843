"""The published OpenAPI document, with model examples as the models state them.

FastAPI drops every ``None`` from the document it builds, examples included
(fastapi/fastapi#5559), so an example of a nullable required field such as
``settled_date`` would be published without it and contradict its own schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from arbor_portal.entrypoints import schemas


def _model_examples() -> dict[str, list[Any]]:
    models = [
        model
        for model in vars(schemas).values()
        if isinstance(model, type)
        and issubclass(model, BaseModel)
        and model.__module__ == schemas.__name__
    ]
    found = {
        model.__name__: model.model_json_schema().get("examples") for model in models
    }
    return {name: examples for name, examples in found.items() if examples}


def install(app: FastAPI) -> None:
    """Publish each model's examples with their nulls."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        components = document.get("components", {}).get("schemas", {})
        for name, examples in _model_examples().items():
            if name in components:
                components[name]["examples"] = examples
        return document

    app.openapi = openapi  # type: ignore[method-assign]
