"""Crafted model files for attack tests: what someone with write access to the bucket could plant.

Each helper replaces a bundle's model file and re-records its sha256 in `metadata.json`, so the
hash check passes and only the safe-load check stands between the file and the server.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import skops.io as sio
from sklearn.preprocessing import FunctionTransformer

from mcp_server.common.transformers import as_text


def skops_naming(module: str, name: str) -> bytes:
    """A valid .skops archive whose FunctionTransformer names `module.name` as its function."""
    data = sio.dumps(FunctionTransformer(func=as_text))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read("schema.json"))
        files = {n: archive.read(n) for n in archive.namelist() if n != "schema.json"}
    func = schema["content"]["content"]["func"]
    func["__module__"], func["__class__"] = module, name
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("schema.json", json.dumps(schema))
        for n, content in files.items():
            archive.writestr(n, content)
    return out.getvalue()


PICKLE_BYTES = pickle.dumps({"planted": True})


def plant(bundle: Path, name: str, data: bytes) -> None:
    """Write `data` as bundle file `name` and update its hash in metadata.json."""
    (bundle / name).write_bytes(data)
    meta_path = bundle / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["artifacts"][name] = hashlib.sha256(data).hexdigest()
    meta_path.write_text(json.dumps(meta))
