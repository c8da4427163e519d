"""`leakguard scan` output and notebook redaction, checked by other tools:
the SARIF 2.1.0 schema (as shipped by Microsoft's SARIF packages) and nbformat."""
import glob
import json
import subprocess
import tarfile

import jsonschema
import nbformat
import pytest

from support import isolated_env

GH = "ghp_R7kPq2LmN9xVt4Hs8WzC1bYd6FjG3aEu0K9p"


def sample_notebook(path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"token = '{GH}'\nprint(token)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=f"{GH}\n"),
            nbformat.v4.new_output("display_data", data={"text/html": f"<b>{GH}</b>", "image/png": "iVBORw0KGgo="}),
            nbformat.v4.new_output("error", ename="KeyError", evalue=GH, traceback=[f"\x1b[31mKeyError\x1b[0m: {GH}"]),
        ]),
        nbformat.v4.new_markdown_cell("# clean"),
    ]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def sarif_schema(tmp_path_factory):
    """The SARIF 2.1.0 JSON schema from the npm registry (@microsoft/jest-sarif ships it)."""
    d = tmp_path_factory.mktemp("sarif")
    subprocess.run(["npm", "pack", "--silent", "@microsoft/jest-sarif@1.0.0-beta.0"], cwd=d, check=True, capture_output=True)
    with tarfile.open(glob.glob(str(d / "*.tgz"))[0]) as t:
        t.extractall(d, filter="data")
    schema = glob.glob(str(d / "package" / "**" / "sarif-2.1.0*.json"), recursive=True)[0]
    return json.load(open(schema))


def test_sarif_validates(tmp_path, leakguard, sarif_schema):
    sample_notebook(tmp_path / "nb.ipynb")
    (tmp_path / ".env").write_text(f"GITHUB_TOKEN={GH}\n")
    out = subprocess.run([leakguard, "scan", "--format", "sarif", "."], cwd=tmp_path, capture_output=True,
                         env=isolated_env(str(tmp_path)))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, sarif_schema)
    results = doc["runs"][0]["results"]
    assert len(results) >= 5
    assert GH not in out.stdout.decode()


def test_in_place_redaction_round_trip(tmp_path, leakguard):
    path = tmp_path / "nb.ipynb"
    sample_notebook(path)
    env = isolated_env(str(tmp_path))
    subprocess.run([leakguard, "redact", "--in-place", str(path)], check=True, env=env, capture_output=True)
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert GH not in path.read_text()
    assert nb.cells[0].outputs[1]["data"]["image/png"] == "iVBORw0KGgo="
    out = subprocess.run([leakguard, "scan", str(path)], env=env, capture_output=True)
    assert out.returncode == 0, out.stdout
