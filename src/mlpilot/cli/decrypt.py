"""``mlpilot decrypt``: read back what the service wrote encrypted under a ``KmsKeyId``
(batch transform outputs, package payloads)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpilot.cli._common import console, fail, one_line_errors
from mlpilot.cli.serve import parse_kms_keys

app = typer.Typer()


@app.command("decrypt")
@one_line_errors
def decrypt(
    source: Annotated[Path, typer.Argument(help="An encrypted file, or a folder of them.")],
    target: Annotated[
        Path, typer.Argument(help="Where the plaintext goes: a file, or a folder for a folder.")
    ],
    kms_key: Annotated[
        list[str],
        typer.Option(help="NAME=KEYFILE (repeatable), as given to mlpilot serve --kms-key."),
    ],
) -> None:
    """Decrypt files written under a KmsKeyId (AES-256-GCM; the key is named in each file).

    A file appears only once its tag is checked: a wrong key or a changed byte writes nothing.
    A folder is decrypted file by file into TARGET, keeping the relative paths; files that
    are not encrypted are skipped and named.

    Example: mlpilot decrypt out/ plain/ --kms-key alias/models=model.key
    """
    from mlpilot.package import Keyring, decrypt_file, is_encrypted

    try:
        keyring = Keyring.from_files(parse_kms_keys(kms_key))
    except ValueError as exc:
        raise fail(str(exc)) from None
    if source.is_dir():
        pairs = [
            (path, target / path.relative_to(source))
            for path in sorted(source.rglob("*"))
            if path.is_file()
        ]
    elif source.is_file():
        pairs = [(source, target)]
    else:
        raise fail(f"{source} is no file or folder")
    done = 0
    for path, out in pairs:
        if not is_encrypted(path):
            console.print(f"skipped {path}: not encrypted", soft_wrap=True)
            continue
        decrypt_file(path, out, keyring)
        done += 1
    if not done:
        raise fail(f"no encrypted file in {source}")
    console.print(f"decrypted {done} file(s) to {target}", soft_wrap=True)
