"""python -m intentlocal.export {embeddinggemma|instructor} SRC_DIR OUT_DIR

Turns a downloaded model folder into the runtime ONNX folder (see the package
docstring). Logs to stderr; exits 0 on success, 2 on a clear failure (missing
dependency, unsupported model, failed check), 1 on an unexpected error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m intentlocal.export",
        description="Export a sentence embedder to the ONNX folder intentlocal runs.",
    )
    parser.add_argument("kind", choices=["embeddinggemma", "instructor"])
    parser.add_argument("src", type=Path, help="the downloaded model folder")
    parser.add_argument(
        "out",
        type=Path,
        help="where model.onnx, model_int8.onnx, tokenizer.json and intentlocal.json go",
    )
    parser.add_argument(
        "--max-length", type=int, default=None, help="longest tokenised text (default 256)"
    )
    parser.add_argument(
        "--prompt", default=None, help="instructor: the instruction prepended to every text"
    )
    parser.add_argument(
        "--prompt-name",
        default=None,
        help="embeddinggemma: which of the model's prompts to use (default Clustering)",
    )
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 variant")
    args = parser.parse_args(argv)

    from intentlocal.export import (
        DEFAULT_INSTRUCTOR_PROMPT,
        DEFAULT_MAX_LENGTH,
        GEMMA_PROMPT_NAME,
        ExportError,
        export_embeddinggemma,
        export_instructor_folder,
        log,
    )

    if not args.src.is_dir():
        print(f"error: source folder {args.src} does not exist", file=sys.stderr)
        return 2
    max_length = args.max_length or DEFAULT_MAX_LENGTH
    try:
        if args.kind == "embeddinggemma":
            config = export_embeddinggemma(
                args.src,
                args.out,
                prompt_name=args.prompt_name or GEMMA_PROMPT_NAME,
                max_length=max_length,
                quantize=not args.no_int8,
            )
            log(f"done: {args.out} (default variant {config['default_variant']})")
        else:
            export_instructor_folder(
                args.src,
                args.out,
                prompt=args.prompt or DEFAULT_INSTRUCTOR_PROMPT,
                max_length=max_length,
                quantize=not args.no_int8,
            )
            log(f"done: {args.out}")
    except ExportError as exc:
        print(f"error: export of {args.kind} from {args.src} failed: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        traceback.print_exc()
        print(
            f"error: export of {args.kind} from {args.src} failed unexpectedly: "
            f"{type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
