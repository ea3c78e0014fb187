"""`argosy` against Ceph RGW, as a user runs it."""

from __future__ import annotations

import json
import os
import re

import pytest

pytestmark = pytest.mark.rgw
MiB = 1 << 20


def test_a_file_goes_up_in_parts_and_comes_back_verified(argosy_rgw, rgw_bucket, tmp_path):
    data = os.urandom(21 * MiB)
    (tmp_path / "in.bin").write_bytes(data)
    up = argosy_rgw("cp", "--part-size", "5", "in.bin", f"s3://{rgw_bucket}/data/")
    assert up.code == 0, up.err
    assert "crc32c recorded" in up.err
    down = argosy_rgw("cp", f"s3://{rgw_bucket}/data/in.bin", "out.bin")
    assert down.code == 0, down.err
    assert "verified crc32c:" in down.err
    assert (tmp_path / "out.bin").read_bytes() == data


_LOADS = (
    "import sys; from argosy.main import main; sys.argv[0] = 'argosy'; code = main(); "
    "print('botocore loaded:', 'botocore' in sys.modules, file=sys.stderr); "
    "sys.exit(code)"
)


def test_moving_files_and_folders_never_loads_botocore(argosy_rgw, rgw_bucket, tmp_path):
    """Explicit endpoint and keys: every object request and the listing go direct
    (`route.py`), and the ~0.15 s botocore costs at start is not spent, folders of objects
    included; a batch delete does need it."""
    (tmp_path / "in.bin").write_bytes(os.urandom(11 * MiB))
    (tmp_path / "tree" / "d").mkdir(parents=True)
    (tmp_path / "tree" / "d" / "f").write_text("x")
    url = f"s3://{rgw_bucket}/moved"
    for args in (
        ["cp", "--part-size", "5", "in.bin", f"{url}/in.bin"],
        ["cp", f"{url}/in.bin", "out.bin"],
        ["stat", f"{url}/in.bin"],
        ["cp", "tree", f"{url}/tree.tzst", "--archive", "tar.zst"],
        ["cp", f"{url}/tree.tzst", "back", "--archive", "auto"],
        ["cp", "tree", f"{url}/flat/", "--archive", "none"],
        ["cp", f"{url}/flat/", "flatback", "--archive", "none"],
        ["ls", f"{url}/"],
    ):
        run = argosy_rgw("-c", _LOADS, *args, python=True)
        assert run.code == 0, run.err
        assert "botocore loaded: False" in run.err, args
    assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "in.bin").read_bytes()
    assert (tmp_path / "back" / "d" / "f").read_text() == "x"
    assert (tmp_path / "flatback" / "d" / "f").read_text() == "x"
    deleting = argosy_rgw("-c", _LOADS, "rm", "-r", f"{url}/flat/", python=True)
    assert deleting.code == 0 and "botocore loaded: True" in deleting.err, deleting.err


def test_stdin_uploads_and_cat_streams_back(argosy_rgw, rgw_bucket):
    data = os.urandom(7 * MiB + 5)
    assert argosy_rgw("cp", "-", f"s3://{rgw_bucket}/piped", stdin=data).code == 0
    got = argosy_rgw("cat", f"s3://{rgw_bucket}/piped")
    assert got.code == 0 and got.out == data


def test_stat_reports_the_record_as_json(argosy_rgw, rgw_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    argosy_rgw("cp", "f", f"s3://{rgw_bucket}/f")
    info = json.loads(argosy_rgw("stat", f"s3://{rgw_bucket}/f").text)
    assert info["url"] == f"s3://{rgw_bucket}/f" and info["size"] == 3
    assert info["checksum"] == {"algorithm": "crc32c", "value": "364b3fb7"}
    assert info["verified"] is True and '"' not in info["etag"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["modified"])


def test_ls_prints_size_time_and_url_with_folders_as_pre(argosy_rgw, rgw_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"12345")
    for key in ("top", "dir/a", "dir/b"):
        argosy_rgw("cp", "f", f"s3://{rgw_bucket}/{key}")
    lines = argosy_rgw("ls", f"s3://{rgw_bucket}/").text.splitlines()
    assert re.fullmatch(rf"\s+PRE\s+s3://{rgw_bucket}/dir/", lines[0])
    assert re.fullmatch(rf"\s+5  \S+Z\s+s3://{rgw_bucket}/top", lines[1])
    recursive = argosy_rgw("ls", "-r", "--json", f"s3://{rgw_bucket}/dir/").text.splitlines()
    assert [json.loads(x)["url"] for x in recursive] == [
        f"s3://{rgw_bucket}/dir/a",
        f"s3://{rgw_bucket}/dir/b",
    ]


def test_rm_r_deletes_a_folder_and_spares_its_lookalike(argosy_rgw, rgw_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    for key in ("foo/1", "foo/2/3", "foobar"):
        argosy_rgw("cp", "f", f"s3://{rgw_bucket}/{key}")
    assert argosy_rgw("rm", "-r", f"s3://{rgw_bucket}/foo").code == 0
    left = argosy_rgw("ls", "-r", f"s3://{rgw_bucket}/").text
    assert "foobar" in left and "foo/" not in left
    assert argosy_rgw("rm", f"s3://{rgw_bucket}/never-was").code == 0


def test_cp_r_round_trips_a_folder(argosy_rgw, rgw_bucket, tmp_path):
    src = tmp_path / "tree"
    (src / "x" / "y").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "x" / "y" / "b.txt").write_text("b")
    assert argosy_rgw("cp", "-r", "tree", f"s3://{rgw_bucket}/run/").code == 0
    assert argosy_rgw("cp", "-r", f"s3://{rgw_bucket}/run/", "back").code == 0
    assert (tmp_path / "back" / "x" / "y" / "b.txt").read_text() == "b"


def test_a_missing_key_exits_3(argosy_rgw, rgw_bucket):
    got = argosy_rgw("cp", f"s3://{rgw_bucket}/nope", "out")
    assert got.code == 3 and f"s3://{rgw_bucket}/nope" in got.err
    assert got.err.count("\n") == 1


def test_a_missing_bucket_exits_3_naming_it(argosy_rgw):
    got = argosy_rgw("ls", "s3://no-such-bucket-argosy/")
    assert got.code == 3 and "no such bucket" in got.err


def test_a_wrong_secret_exits_5_and_never_prints_the_secret(argosy_rgw, rgw_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    got = argosy_rgw(
        "cp", "f", f"s3://{rgw_bucket}/f", env={"AWS_SECRET_ACCESS_KEY": "wrong-secret-value-123"}
    )
    assert got.code == 5, got.err
    assert "wrong-secret-value-123" not in got.err
    assert got.err.count("\n") == 1


def test_an_unreachable_endpoint_fails_with_one_line(argosy_rgw, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    got = argosy_rgw("cp", "f", "s3://b/f", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert got.code == 1 and "cannot reach the endpoint" in got.err
    assert got.err.count("\n") == 1


@pytest.mark.parametrize("endpoint", ["127.0.0.1:9000", "ftp://127.0.0.1", "http://"])
def test_an_endpoint_that_is_not_a_url_exits_2_with_one_line(argosy_rgw, tmp_path, endpoint):
    (tmp_path / "f").write_bytes(b"x")
    for args in (["cp", "f", "s3://b/f"], ["cp", "--archive", "tar.zst", ".", "s3://b/t"]):
        got = argosy_rgw(*args, env={"AWS_ENDPOINT_URL": endpoint})
        assert got.code == 2 and f"S3 endpoint {endpoint!r} is not a URL" in got.err, got.err
        assert got.err.count("\n") == 1


@pytest.mark.parametrize("endpoint", ["ftp://127.0.0.1", "http://"])
def test_an_oss_endpoint_that_is_not_a_url_exits_2_with_one_line(argosy_rgw, endpoint):
    got = argosy_rgw(
        "stat",
        "oss://bucket/k",
        env={"OSS_ENDPOINT": endpoint, "OSS_ACCESS_KEY_ID": "a", "OSS_ACCESS_KEY_SECRET": "b"},
    )
    assert got.code == 2 and f"OSS endpoint {endpoint!r} is not a URL" in got.err, got.err
    assert got.err.count("\n") == 1


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--part-size", "0"], "part size must be at least 5 MiB"),
        (["--part-size", "6000"], "part size must be at most 5120 MiB"),
        (["--concurrency", "0"], "concurrency must be at least 1"),
        (["--files", "0"], "files in flight must be at least 1, not 0"),
        (["--sse", "c"], "SSE-C needs a 32-byte customer key"),
        (["--ca-bundle", "no-such-ca.pem"], "CA bundle no-such-ca.pem: no such file"),
    ],
)
def test_a_setting_asked_for_but_unusable_is_refused_not_ignored(
    argosy_rgw, rgw_bucket, tmp_path, flags, says
):
    (tmp_path / "f").write_bytes(b"x")
    got = argosy_rgw("cp", *flags, "f", f"s3://{rgw_bucket}/refused")
    assert got.code == 2 and says in got.err, got.err
    assert argosy_rgw("stat", f"s3://{rgw_bucket}/refused").code == 3


def test_a_stream_upload_opens_its_driver_alongside_and_still_reports_its_errors(
    argosy_rgw, rgw_bucket
):
    ok = argosy_rgw("cp", "-", f"s3://{rgw_bucket}/from-stdin", stdin=b"piped bytes")
    assert ok.code == 0, ok.err
    assert argosy_rgw("cat", f"s3://{rgw_bucket}/from-stdin").out == b"piped bytes"
    missing = argosy_rgw("cp", "-", "s3://no-such-bucket-5k/x", stdin=b"piped bytes")
    assert missing.code == 3 and missing.err.count("\n") == 1, missing.err


def test_a_download_into_a_missing_folder_exits_2(argosy_rgw, rgw_bucket, tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    argosy_rgw("cp", "f", f"s3://{rgw_bucket}/f")
    got = argosy_rgw("cp", f"s3://{rgw_bucket}/f", "no/such/folder/f")
    assert got.code == 2 and "does not exist" in got.err


def test_a_corrupted_object_exits_4_and_leaves_no_file(argosy_rgw, rgw_bucket, rgw, tmp_path):
    from tests.conftest import s3_driver

    (tmp_path / "f").write_bytes(b"original")
    argosy_rgw("cp", "f", f"s3://{rgw_bucket}/f")
    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        rgw_bucket,
        create=False,
    )
    driver.put("f", b"0riginal", size=8, metadata=driver.stat("f").metadata)
    got = argosy_rgw("cp", f"s3://{rgw_bucket}/f", "g")
    assert got.code == 4 and "checksum mismatch" in got.err
    assert not (tmp_path / "g").exists()
    cat = argosy_rgw("cat", f"s3://{rgw_bucket}/f")
    assert cat.code == 4 and cat.out == b"0riginal"


def test_a_foreign_object_downloads_with_an_unverified_note(argosy_rgw, rgw_bucket, rgw, tmp_path):
    from tests.conftest import s3_driver

    driver = s3_driver(
        rgw["AWS_ENDPOINT_URL"],
        rgw["AWS_ACCESS_KEY_ID"],
        rgw["AWS_SECRET_ACCESS_KEY"],
        rgw_bucket,
        create=False,
    )
    driver.put("foreign", b"x", size=1, metadata={})
    got = argosy_rgw("cp", f"s3://{rgw_bucket}/foreign", "h")
    assert got.code == 0 and "unverified" in got.err


def test_a_repository_configmap_supplies_endpoint_and_keys(argosy_rgw, rgw_bucket, rgw, tmp_path):
    secrets = tmp_path / "secrets" / "rgw-creds"
    secrets.mkdir(parents=True)
    (secrets / "access").write_text(rgw["AWS_ACCESS_KEY_ID"])
    (secrets / "secret").write_text(rgw["AWS_SECRET_ACCESS_KEY"])
    endpoint = rgw["AWS_ENDPOINT_URL"].removeprefix("http://")
    (tmp_path / "cm.yaml").write_text(f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: artifact-repositories
  annotations: {{workflows.argoproj.io/default-artifact-repository: rgw}}
data:
  rgw: |
    s3:
      bucket: {rgw_bucket}
      endpoint: {endpoint}
      insecure: true
      accessKeySecret: {{name: rgw-creds, key: access}}
      secretKeySecret: {{name: rgw-creds, key: secret}}
""")
    (tmp_path / "f").write_bytes(b"via repository")
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "ARGOSY_SECRETS_DIR": str(tmp_path / "secrets"),
    }
    got = argosy_rgw("cp", "--repository", "cm.yaml", "f", f"s3://{rgw_bucket}/r", env=env)
    assert got.code == 0, got.err
    assert argosy_rgw("cat", f"s3://{rgw_bucket}/r").out == b"via repository"


def test_remote_to_remote_copies_between_repositories_verified(argosy_rgw, rgw_bucket, tmp_path):
    data = os.urandom(6 * MiB + 11)
    (tmp_path / "local-root" / "src").mkdir(parents=True)
    (tmp_path / "in").write_bytes(data)
    assert argosy_rgw("cp", "in", "local://src/in").code == 0
    assert (
        argosy_rgw("cp", "--part-size", "5", "local://src/in", f"s3://{rgw_bucket}/copied").code
        == 0
    )
    again = argosy_rgw("cp", f"s3://{rgw_bucket}/copied", f"s3://{rgw_bucket}/copied-again")
    assert again.code == 0, again.err
    got = argosy_rgw("cp", f"s3://{rgw_bucket}/copied-again", "out")
    assert "verified" in got.err and (tmp_path / "out").read_bytes() == data


def test_a_progress_line_is_drawn_on_a_terminal_and_never_when_piped(
    argosy_rgw, rgw_bucket, tmp_path
):
    import pty
    import subprocess
    import sys

    (tmp_path / "f").write_bytes(os.urandom(30 * MiB))
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "argosy",
            "cp",
            "--part-size",
            "5",
            "--concurrency",
            "1",
            "f",
            f"s3://{rgw_bucket}/tty",
        ],
        cwd=tmp_path,
        env=argosy_rgw.env,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=120) == 0
    assert b"MiB/s" in seen and b"%" in seen and b"\r" in seen
    piped = argosy_rgw("cp", "--part-size", "5", "f", f"s3://{rgw_bucket}/piped2")
    assert "\r" not in piped.err
