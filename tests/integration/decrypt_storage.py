#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""An independent decryptor for Confab's data directory, written from docs/storage-format.md
alone (it shares no code with confabd). It proves the format is specified well enough to read,
and lets an operator inspect their own data with their own master key.

  decrypt_storage.py --master-key FILE --data-dir DIR page N        one database page (1-based)
  decrypt_storage.py --master-key FILE --data-dir DIR pages         every page of confab.db and
                                                                    every frame of confab.db-wal
  decrypt_storage.py --master-key FILE --data-dir DIR blob PATH     a whole blob file

Plaintext goes to stdout; failures (a wrong key, a tampered byte) exit 1 with a message.
Runs under /usr/bin/python3 with Debian's python3-cryptography.
"""
import argparse
import base64
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

PAGE = 4096
RESERVE = 32
KIND_DATABASE, KIND_WAL = 1, 2


def read_master_key(path):
    text = open(path, "rb").read().strip()
    if len(text) == 64:
        return bytes.fromhex(text.decode())
    return base64.b64decode(text, validate=True)


def unwrap(master, entry, aad):
    return AESGCM(master).decrypt(base64.b64decode(entry["nonce"]),
                                  base64.b64decode(entry["wrapped"]), aad)


def load_keys(master_path, data_dir):
    master = read_master_key(master_path)
    store = json.load(open(os.path.join(data_dir, "keystore.json")))
    db = store["database_key"]
    database_key = unwrap(master, db, b"confab key v1\0database\0" + db["id"].encode())
    data_keys = {}
    for d in store.get("data_keys", []):
        aad = b"confab key v1\0data\0" + d["id"].encode() + b"\0" + d["account_id"].encode()
        data_keys[d["id"]] = unwrap(master, d, aad)
    return database_key, data_keys


def open_page(database_key, image, kind, offset):
    body, tag = image[:PAGE - RESERVE], image[PAGE - 16:]
    epoch, counter = image[PAGE - 32:PAGE - 20], image[PAGE - 20:PAGE - 16]
    subkey = HKDFExpand(SHA256(), 32, b"confab page v2" + epoch).derive(database_key)
    nonce = bytes(8) + counter
    aad = struct.pack(">IQ", kind, offset)
    return AESGCM(subkey).decrypt(nonce, body + tag, aad)


def database_pages(database_key, data_dir):
    raw = open(os.path.join(data_dir, "confab.db"), "rb").read()
    for offset in range(0, len(raw) - PAGE + 1, PAGE):
        yield open_page(database_key, raw[offset:offset + PAGE], KIND_DATABASE, offset)


def wal_frames(database_key, data_dir):
    path = os.path.join(data_dir, "confab.db-wal")
    if not os.path.exists(path):
        return
    raw = open(path, "rb").read()
    frame = 24 + PAGE
    for start in range(32, len(raw) - frame + 1, frame):
        image = start + 24
        try:
            yield open_page(database_key, raw[image:image + PAGE], KIND_WAL, image)
        except InvalidTag:
            return  # a torn last frame, as after a crash


def decrypt_blob(raw, data_keys):
    header = raw[:76]
    if header[:7] != b"CFBLOB\0" or header[7] != 1:
        raise ValueError("not a version 1 Confab blob")
    (chunk_size,) = struct.unpack(">I", header[8:12])
    key_id, salt, blob_id = header[12:28].hex(), header[28:60], header[60:76]
    if key_id not in data_keys:
        raise ValueError(f"data key {key_id} is not in the key store (destroyed?)")
    key = AESGCM(HKDFExpand(SHA256(), 32, b"confab blob v1" + salt + blob_id)
                 .derive(data_keys[key_id]))
    record = 12 + chunk_size + 16
    body = len(raw) - 76
    count = body // record + (1 if body % record else 0)
    if count == 0 or (body % record and body % record < 28):
        raise ValueError("truncated blob (no complete final chunk)")
    out = bytearray()
    for i in range(count):
        rec = raw[76 + i * record:76 + (i + 1) * record]
        nonce = rec[:12]
        if struct.unpack(">Q", nonce[:8])[0] != i:
            raise ValueError(f"chunk {i} is out of place")
        aad = header + struct.pack(">Q", i) + (b"\x01" if i == count - 1 else b"\x00")
        out += key.decrypt(nonce, rec[12:], aad)
    return bytes(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--master-key", required=True)
    p.add_argument("--data-dir", required=True)
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("page").add_argument("number", type=int)
    sub.add_parser("pages")
    sub.add_parser("blob").add_argument("path")
    args = p.parse_args()
    try:
        database_key, data_keys = load_keys(args.master_key, args.data_dir)
        out = sys.stdout.buffer
        if args.what == "page":
            pages = list(database_pages(database_key, args.data_dir))
            if not 1 <= args.number <= len(pages):
                raise ValueError(f"the database has {len(pages)} pages")
            page = pages[args.number - 1]
            if args.number == 1 and not page.startswith(b"SQLite format 3\0"):
                raise ValueError("page 1 decrypted but holds no SQLite header")
            out.write(page)
        elif args.what == "pages":
            for page in database_pages(database_key, args.data_dir):
                out.write(page)
            for page in wal_frames(database_key, args.data_dir):
                out.write(page)
        else:
            out.write(decrypt_blob(open(args.path, "rb").read(), data_keys))
    except InvalidTag:
        sys.exit("decrypt_storage: authentication failed (wrong key or tampered bytes)")
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"decrypt_storage: {e}")


if __name__ == "__main__":
    main()
