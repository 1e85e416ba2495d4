"""clipkit.Index: the same results and fields as `clipkit search --json`, on indexes built by the
CLI or by Python; add, remove, len, filters and errors."""
import json
import shutil

import numpy as np
import pytest

from conftest import BAD, PATHS, TINY, cli


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for p in PATHS:
        shutil.copy(p, d)
    (d / "sub").mkdir()
    shutil.copy(PATHS[0], d / "sub" / "again.png")
    return d


@pytest.fixture(scope="module")
def cli_index(folder, tmp_path_factory):
    ix = tmp_path_factory.mktemp("cli") / "index"
    cli("index", "build", "--model", TINY, "--images", folder, "--index", ix, "--threads", 2)
    return ix


def cli_search(ix, *query, k=5):
    return json.loads(cli("search", "--index", ix, *query, "-k", k, "--json", "--threads", 2).stdout)["results"]


def test_search_equals_the_cli(clipkit, cli_index):
    ix = clipkit.Index.open(cli_index)
    assert len(ix) == len(PATHS) + 1
    for text in ("a photo of an astronaut", "a rocket"):
        assert ix.search(text=text, k=5) == cli_search(cli_index, "--text", text)
    assert ix.search(image=PATHS[1], k=4) == cli_search(cli_index, "--image", PATHS[1], k=4)
    got = ix.search(text="a cup", k=3, filter={"folder": "sub"})
    assert got == cli_search(cli_index, "--text", "a cup", "--folder", "sub", k=3)
    assert [r["path"].endswith("again.png") for r in got] == [True]
    assert set(got[0]) >= {"rank", "id", "path", "score"}


def test_search_by_vector_and_the_index_model(clipkit, cli_index, tiny):
    ix = clipkit.Index.open(cli_index, model=tiny)
    v = tiny.embed_images([PATHS[2]])[0]
    hits = ix.search(vector=v, k=1)
    assert hits[0]["path"].endswith(PATHS[2].rsplit("/", 1)[1]) and hits[0]["rank"] == 1
    assert ix.info["dim"] == 48 and ix.info["count"] == len(ix)


def test_build_from_python_equals_the_cli_built_index(clipkit, tiny, folder, cli_index, tmp_path):
    ix = clipkit.Index.build(tiny, images=str(folder), path=tmp_path / "py")
    assert len(ix) == len(PATHS) + 1 and ix.skipped == []
    for text in ("a photo of an astronaut", "a cat"):
        assert ix.search(text=text, k=9) == cli_search(cli_index, "--text", text, k=9)
    with pytest.raises(ValueError, match="already holds an index"):
        clipkit.Index.build(tiny, images=str(folder), path=tmp_path / "py")


def test_add_and_remove(clipkit, tiny, tmp_path):
    ix = clipkit.Index.build(tiny, images=PATHS[:3] + [BAD], path=tmp_path / "ix")
    assert len(ix) == 3 and [s[0] for s in ix.skipped] == [BAD]
    assert ix.add(images=PATHS[2:6]) == 3  # PATHS[2] is already there
    assert len(ix) == 6
    hit = ix.search(image=PATHS[4], k=1)[0]
    assert ix.remove([hit["id"]]) == 1 and len(ix) == 5
    assert all(r["id"] != hit["id"] for r in ix.search(vector=tiny.embed_images([PATHS[4]])[0], k=10))
    assert len(clipkit.Index.open(tmp_path / "ix")) == 5  # on disk


def test_index_errors(clipkit, cli_index, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such index folder"):
        clipkit.Index.open(tmp_path / "none")
    ix = clipkit.Index.open(cli_index)
    with pytest.raises(ValueError, match="exactly one of"):
        ix.search(text="a", vector=np.zeros(48, np.float32))
    with pytest.raises(ValueError, match=r"the index holds \(48,\)"):
        ix.search(vector=np.zeros(12, np.float32))
    with pytest.raises(ValueError, match="filter"):
        ix.search(text="a", filter={"colour": "red"})
