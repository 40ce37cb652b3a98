"""The documentation site's generators (docs/sitegen), checked without building the site.

CI builds the whole site (``.ci/run``: Sphinx, warnings as errors, no network); these tests check
what the generators promise, against oracles of their own: the package's files on disk and its
``__all__`` lists for the API reference, docutils for the rendering of type lines,
``conv_matrix`` for what the gallery's captions say.
"""
import importlib
import re
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sphinx")  # the docs extra; CI installs it

import matconv as mc  # noqa: E402

CHECKOUT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(CHECKOUT / "docs"))

from sitegen import api, docstrings, files, gallery, notebooks  # noqa: E402

DIRECTIVE = re.compile(r"^\.\. auto(class|exception|function|data):: (\S+)$", re.M)


def modules_on_disk():
    """Every module file and package of matconv whose dotted path has no part starting with _."""
    root = CHECKOUT / "matconv"
    found = {"matconv"}
    for path in root.rglob("*.py"):
        parts = ("matconv", *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts[1:]):
            found.add(".".join(parts))
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The API reference as written into a fresh directory: {file name: text}."""
    srcdir = tmp_path_factory.mktemp("site")
    api.write_api(srcdir)
    pages = {p.name: p.read_text() for p in (srcdir / "api").glob("*.rst")}
    stubs = {p.name: p.read_text() for p in (srcdir / "api" / "generated").glob("*.rst")}
    return pages, stubs


def resolve(full_name):
    """The object a full dotted name denotes: the longest importable module, then attributes."""
    parts = full_name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(full_name)


def test_every_module_on_disk_has_a_page_in_the_index(reference):
    pages, _ = reference
    expected = modules_on_disk()
    assert len(expected) > 40  # the walk found the package, not an empty folder
    assert set(api.public_modules("matconv")) == expected
    index = pages["index.rst"]
    for module in expected:
        assert f".. automodule:: {module}\n" in pages[f"{module}.rst"]
        assert f"\n   {module}\n" in index, module


def test_every_public_name_leads_to_one_page_of_the_same_object(reference):
    pages, stubs = reference
    documented = {}
    for filename, text in stubs.items():
        module = re.search(r"^\.\. currentmodule:: (\S+)$", text, re.M).group(1)
        found = DIRECTIVE.findall(text)
        assert len(found) == 1, filename
        full = f"{module}.{found[0][1]}"
        assert filename == f"{full}.rst"
        documented[full] = resolve(full)
    assert len(documented) > 200
    for module in sorted(modules_on_disk()):
        mod = importlib.import_module(module)
        page = pages[f"{module}.rst"]
        for name in mod.__all__:
            obj = getattr(mod, name)
            if isinstance(obj, type(mod)):
                assert f"{obj.__name__}.rst" in pages, (module, name)
                assert f"`~{obj.__name__}`\n" in page, (module, name)
            elif f"{module}.{name}" in documented:
                assert documented[f"{module}.{name}"] is obj
                assert f"\n   generated/{module}.{name}\n" in page, (module, name)  # its page
                assert f"`~{module}.{name}`\n" in page, (module, name)           # its row
            else:
                targets = [full for full, o in documented.items()
                           if o is obj and full.rpartition(".")[2] == name]
                assert len(targets) == 1, (module, name, targets)
                assert f"`~{targets[0]}`\n" in page, (module, name)  # a link to that page


def test_names_are_documented_where_users_import_them(reference):
    _, stubs = reference
    for full in ("matconv.conv_matrix", "matconv.nn.Conv2d", "matconv.nn.Module",
                 "matconv.operators.Conv", "matconv.page.render_page",
                 "matconv.geometry.PADDING_MODES"):
        assert f"{full}.rst" in stubs, full
    for full in ("matconv.lowering.conv_matrix", "matconv.nn.conv.Conv2d",
                 "matconv.lowering.matrices.conv_matrix", "matconv.geometry.padding.PADDING_MODES"):
        assert f"{full}.rst" not in stubs, full
    # the function matconv exports as compose lives in matconv.composition: one page, its name
    assert "matconv.compose.rst" in stubs and "matconv.composition.compose.rst" not in stubs


def test_summaries_are_whole_first_paragraphs_that_render(reference):
    from docutils.core import publish_doctree

    text = api.summary("matconv.lowering.channel_windows", "function")
    # a literal with ". " inside: a sentence splitter would cut it open
    assert "``g*group_size .. + group_size - 1``" in text
    assert text.endswith("``C * prod(input_size)``.")
    assert api.summary("matconv.page.MAX_CELLS", "data").startswith("The page draws every")
    assert api.summary("matconv.nn", "module").startswith("Layers, losses and the module")
    pages, _ = reference
    stream = StringIO()
    publish_doctree(pages["matconv.lowering.maps.rst"].split(".. automodule")[0] + "\n"
                    + pages["matconv.lowering.maps.rst"].split("   :no-members:\n")[1]
                    .replace(":py:func:", ":literal:"),
                    settings_overrides={"warning_stream": stream, "report_level": 2})
    assert stream.getvalue() == ""
    assert "channel_windows" in pages["matconv.lowering.maps.rst"]


def test_constants_show_short_values_only(reference):
    _, stubs = reference
    assert ":no-value:" not in stubs["matconv.page.MAX_CELLS.rst"]
    assert ":no-value:" in stubs["matconv.geometry.PADDING_MODES.rst"]  # functions at 0x...


def test_a_module_without_all_is_refused_by_name(tmp_path, monkeypatch):
    package = tmp_path / "nodocs_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("__all__ = ['f']\nfrom .inner import f\n")
    (package / "inner.py").write_text("def f():\n    'F.'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"nodocs_pkg\.inner has no __all__"):
        api.api_names(api.public_modules("nodocs_pkg"))
    (package / "inner.py").write_text("__all__ = ['f', 'g']\ndef f():\n    'F.'\n")
    for name in [m for m in sys.modules if m.startswith("nodocs_pkg")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ValueError, match=r"nodocs_pkg\.inner\.__all__ lists \['g'\]"):
        api.api_names(api.public_modules("nodocs_pkg"))


def rendered_warnings(docstring):
    """docutils' warnings for a numpydoc docstring rendered to reStructuredText, and the text."""
    from docutils.core import publish_doctree
    from numpydoc.docscrape_sphinx import SphinxDocString

    rst = str(SphinxDocString(docstring))
    stream = StringIO()
    tree = publish_doctree(rst, settings_overrides={"warning_stream": stream, "report_level": 2})
    return stream.getvalue(), tree.astext()


def test_stars_in_type_lines_render_as_stars():
    doc = ["Convolve.", "", "Parameters", "----------", "x : ndarray of shape (N, C, *spatial)",
           "    A batch.", "", "Returns", "-------", "ndarray of shape (N, *out)",
           "    ``*out`` is the output size."]
    warnings, _ = rendered_warnings("\n".join(doc))
    assert "Inline emphasis start-string without end-string" in warnings  # the oracle sees it
    fixed = docstrings.escape_type_stars(list(doc))
    warnings, text = rendered_warnings("\n".join(fixed))
    assert warnings == ""
    assert "(N, C, *spatial)" in text and "(N, *out)" in text and "*out is the output" in text


def test_only_type_parts_outside_literals_are_escaped():
    doc = ["Parameters", "----------", "*args : tuple of ``*shape``", "    *Emphasis* here.",
           "", "Notes", "-----", "x : *not a section entry*"]
    assert docstrings.escape_type_stars(list(doc)) == doc


def test_private_bases_give_way_to_public_ones():
    assert docstrings.public_bases(mc.nn.Conv2d.__bases__) == [mc.nn.Module]
    assert docstrings.public_bases((ValueError,)) == [ValueError]


def test_write_if_changed_leaves_an_identical_file_alone(tmp_path):
    path = tmp_path / "deep" / "page.md"
    assert files.write_if_changed(path, "# One\n")
    stamp = path.stat().st_mtime_ns
    assert not files.write_if_changed(path, b"# One\n")
    assert path.stat().st_mtime_ns == stamp
    assert files.write_if_changed(path, "# Two\n") and path.read_text() == "# Two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["page.md"]  # no temporary left


def test_notebooks_are_picked_up_by_glob(tmp_path):
    source, site = tmp_path / "notebooks", tmp_path / "docs"
    source.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (source / name).write_text("{}")
    assert notebooks.copy_notebooks(source, site) == ["01_a.ipynb", "02_b.ipynb"]
    (source / "01_a.ipynb").unlink()
    (source / "13_new.ipynb").write_text('{"new": 1}')
    assert notebooks.copy_notebooks(source, site) == ["02_b.ipynb", "13_new.ipynb"]
    assert sorted(p.name for p in (site / "notebooks").iterdir()) == ["02_b.ipynb", "13_new.ipynb"]
    assert (site / "notebooks" / "13_new.ipynb").read_text() == '{"new": 1}'
    for path in source.iterdir():
        path.unlink()
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        notebooks.copy_notebooks(source, site)


def test_the_checkout_notebooks_are_all_in_the_site(tmp_path):
    names = notebooks.copy_notebooks(CHECKOUT / "notebooks", tmp_path)
    assert names == sorted(p.name for p in (CHECKOUT / "notebooks").glob("*.ipynb"))
    toctree = (CHECKOUT / "docs" / "notebooks.md").read_text()
    assert ":glob:" in toctree and "notebooks/*" in toctree


def test_the_site_includes_the_design_document_and_every_section():
    index = (CHECKOUT / "docs" / "index.md").read_text()
    for page in ("notebooks", "gallery/index", "api/index", "design", "building"):
        assert f"\n{page}\n" in index, page
    assert "../README.md" in index


def matrix_of(case):
    """``A`` of a gallery case from conv_matrix (seed-independent structure, ones as weights)."""
    g = mc.ConvGeometry(**case.geometry)
    conv_input = case.input_shape
    if case.transposed:  # the shown layer's input is the convolution's output
        conv_input = (g.in_channels, *g.transpose_output_size(case.input_shape[1:], 0))
    weight = np.ones(g.weight_shape)
    kwargs = {k: case.geometry[k] for k in ("stride", "padding", "dilation", "padding_mode")
              if k in case.geometry}
    return mc.conv_matrix(weight, conv_input, **kwargs).toarray()


def test_the_captions_say_what_the_matrices_are():
    cases = {a.name: a for a in gallery.ANIMATIONS}
    assert set(cases) >= {"stride", "padding", "dilation", "transposed", "reflect"}
    assert matrix_of(cases["stride"]).shape == (4, 25)
    padding = matrix_of(cases["padding"])
    assert padding.shape == (16, 16)
    assert (padding != 0).sum(axis=1).tolist()[:5] == [4, 6, 6, 4, 6]
    dilation = matrix_of(cases["dilation"])
    assert dilation.shape == (4, 36) and set((dilation != 0).sum(axis=1)) == {9}
    rows_read = {c // 6 for c in np.flatnonzero(dilation[0])}
    assert rows_read == {0, 2, 4}  # nine taps spanning five input rows
    assert matrix_of(cases["transposed"]).T.shape == (25, 4)  # 2x2 in, 5x5 out
    reflect = matrix_of(cases["reflect"])
    assert reflect.sum(axis=1).tolist() == [9.0] * 16           # nine taps in every row ...
    assert (reflect != 0).sum(axis=1).min() < 9 and reflect.max() > 1  # ... some of them summed
    causal = matrix_of(cases["causal"])
    assert np.array_equal(causal != 0, np.eye(8, dtype=bool) | np.eye(8, k=-2, dtype=bool))


def test_gallery_gifs_are_small_and_have_a_frame_per_row(tmp_path):
    from PIL import Image

    pytest.importorskip("matplotlib")
    for case in gallery.ANIMATIONS:
        path = tmp_path / f"{case.name}.gif"
        size = gallery.render_gif(case, path)
        assert size == path.stat().st_size < gallery.MAX_GIF_BYTES
        A = matrix_of(case)
        with Image.open(path) as gif:
            assert gif.n_frames == A.shape[0], case.name  # a row of A (a column of A.T) each


def test_a_gif_over_the_limit_fails_the_build(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(gallery, "MAX_GIF_BYTES", 1000)
    with pytest.raises(ValueError, match=r"'stride.gif' has [\d,]+ bytes, not under 1,000"):
        gallery.render_gif(gallery.ANIMATIONS[0], tmp_path / "stride.gif")
    assert not (tmp_path / "stride.gif").exists()


def test_pages_are_self_contained_and_linked_from_the_gallery(tmp_path):
    written = gallery.write_pages(tmp_path)
    assert [p.name for p in written] == [f"{p.name}.html" for p in gallery.PAGES]
    index = gallery.gallery_page(gallery.ANIMATIONS, gallery.PAGES)
    for path in written:
        text = path.read_text()
        assert text.startswith("<!DOCTYPE html>")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
        assert f'href="{path.name}"' in index
    for case in gallery.ANIMATIONS:
        assert f"```{{figure}} {case.name}.gif" in index


def test_mathjax_is_copied_for_offline_reading(tmp_path, monkeypatch):
    from sitegen import mathjax

    target = mathjax.copy_mathjax(tmp_path / "_static")
    script = tmp_path / "_static" / mathjax.MATHJAX_PATH
    assert b"MathJax" in script.read_bytes()
    assert list(target.glob("output/chtml/fonts/woff-v2/*.woff"))  # the fonts it loads
    assert (target / "input" / "tex" / "extensions").is_dir()      # what it loads on demand
    monkeypatch.setattr(mathjax.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[docs\]'"):
        mathjax.copy_mathjax(tmp_path / "again")


@pytest.mark.parametrize("module", [api, docstrings, files])
def test_the_examples_in_the_generators_run(module):
    import doctest

    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
