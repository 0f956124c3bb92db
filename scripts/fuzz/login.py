#!/usr/bin/env python3
"""Registers a fresh user on a running stack, logs it in and uploads a small image as that user;
prints `TOKEN USERID UPLOAD_URL` on stdout (the URL is a stored file, for `headUrl`).

Used by scripts/fuzz.sh. Needs CHAT_TEST_BASE_URL (plain HTTP, no nginx per-address limits) and
CHAT_TEST_SMS_OUTBOX (the file the stack's outbox SMS sender appends its JSON lines to), as
`scripts/stack.sh env` prints them. Standard library only.
"""
import hashlib
import json
import os
import random
import sys
import time
import urllib.parse
import urllib.request

BASE = os.environ["CHAT_TEST_BASE_URL"].rstrip("/")
OUTBOX = os.environ["CHAT_TEST_SMS_OUTBOX"]


# A 1x1 grey PNG.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                    "3a7e9b550000000a49444154789c63600000000200015a6ea6b70000000049454e44ae426082")


def post(path, params):
    body = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(BASE + path, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def latest_code(mobile):
    try:
        with open(OUTBOX, encoding="utf-8") as outbox:
            lines = outbox.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("mobile") == mobile:
            return entry.get("code")
    return None


def fail(message, reply=None):
    print(f"[fuzz] login.py: {message}" + (f": {reply}" if reply is not None else ""), file=sys.stderr)
    sys.exit(1)


def main():
    # A +86 199… number: the Swift tests pick theirs from +8613….
    mobile = "+86199" + "".join(random.choice("0123456789") for _ in range(8))
    pwd = hashlib.md5(f"fuzz-{mobile}-{time.time()}".encode()).hexdigest()
    status, reply = post("/chat/getValidateNum", {"mobile": mobile})
    if status != 200 or reply.get("code") != 1:
        fail(f"getValidateNum answered {status}", reply)
    code = None
    for _ in range(50):
        code = latest_code(mobile)
        if code:
            break
        time.sleep(0.1)
    if not code:
        fail(f"no code for {mobile} in {OUTBOX}")
    status, reply = post("/chat/register", {"mobile": mobile, "pwd": pwd, "name": "Fuzz", "validateNum": code})
    if status != 200 or reply.get("code") != 1:
        fail(f"register answered {status}", reply)
    # device 3 (PC): the session of that device kind is the one a later login would replace.
    status, reply = post("/chat/doLogin", {"mobile": mobile, "pwd": pwd, "device": "3"})
    if status != 200 or reply.get("code") != 1:
        fail(f"doLogin answered {status}", reply)
    token, user_id = reply["data"]["token"], reply["data"]["userId"]
    request = urllib.request.Request(BASE + "/chat/doUploads?fileExt=png", data=PNG, method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=15) as response:
        upload = json.loads(response.read())
    if upload.get("code") != 1:
        fail("doUploads answered", upload)
    print(token, user_id, upload["data"]["url"])


if __name__ == "__main__":
    main()
