"""Text embeddings: templates, truncated token sequences, synonyms, memory and disk caches."""

from __future__ import annotations

from pathlib import Path

import open_clip
import pytest
import torch
import torch.nn.functional as F

from engine.openvocab.text import IMAGENET_TEMPLATES, TextEncoder, class_max, encode_prompts
from tests.engine.openvocab._tiny import tiny_clip


@pytest.fixture(scope="module")
def clip():  # noqa: ANN201
    return tiny_clip()


def test_templates_are_the_80_openai_imagenet_ones() -> None:
    assert len(IMAGENET_TEMPLATES) == 80
    assert IMAGENET_TEMPLATES[0] == "a bad photo of a {}."
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)


def test_truncated_tokens_give_the_full_length_embeddings(clip) -> None:  # noqa: ANN001
    tokens = open_clip.get_tokenizer("ViT-B-16")(["a photo of a cat.", "a very long sentence about a small dog."])
    assert tokens.shape[1] == 77
    with torch.inference_mode():
        full = clip.model.encode_text(tokens)
        short = encode_prompts(clip, tokens)
    assert torch.allclose(full, short, atol=1e-5, rtol=1e-5)


def test_embedding_is_the_normalised_mean_of_normalised_prompts(clip) -> None:  # noqa: ANN001
    enc = TextEncoder(clip, templates=("a photo of a {}.", "art of the {}."))
    tokens = open_clip.get_tokenizer("ViT-B-16")(["a photo of a zebra.", "art of the zebra."])
    with torch.inference_mode():
        expected = F.normalize(F.normalize(clip.model.encode_text(tokens), dim=-1).mean(0), dim=-1)
    got = enc.embed_names(["zebra"])[0]
    assert torch.allclose(got, expected, atol=1e-6)


def test_second_request_costs_nothing(clip) -> None:  # noqa: ANN001
    enc = TextEncoder(clip, templates=("a {}.",))
    a = enc.embed_names(["cat", "dog", "cat"])
    assert enc.encoded_count == 2
    b = enc.embed_names(["dog", "cat"])
    assert enc.encoded_count == 2
    assert torch.equal(a[1], b[0]) and torch.equal(a[0], a[2])
    enc.embed_names(["cat", "owl"])
    assert enc.encoded_count == 3  # only the new name ran through the text tower


def test_disk_cache_survives_a_new_encoder(clip, tmp_path: Path) -> None:  # noqa: ANN001
    first = TextEncoder(clip, templates=("a {}.",), cache_dir=tmp_path)
    emb = first.embed_names(["cat"])
    second = TextEncoder(clip, templates=("a {}.",), cache_dir=tmp_path)
    again = second.embed_names(["cat"])
    assert second.encoded_count == 0 and torch.equal(emb, again)
    # keyed by templates and by model: either change misses the cache
    other_templates = TextEncoder(clip, templates=("a photo of {}.",), cache_dir=tmp_path)
    other_templates.embed_names(["cat"])
    assert other_templates.encoded_count == 1
    other_model = TextEncoder(tiny_clip(seed=77), templates=("a {}.",), cache_dir=tmp_path)
    other_model.embed_names(["cat"])
    assert other_model.encoded_count == 1


def test_damaged_cache_file_is_recomputed(clip, tmp_path: Path) -> None:  # noqa: ANN001
    enc = TextEncoder(clip, templates=("a {}.",), cache_dir=tmp_path)
    emb = enc.embed_names(["cat"])
    for f in tmp_path.rglob("*.npy"):
        f.write_bytes(b"garbage")
    fresh = TextEncoder(clip, templates=("a {}.",), cache_dir=tmp_path)
    assert torch.allclose(fresh.embed_names(["cat"]), emb) and fresh.encoded_count == 1


def test_queries_keep_synonyms_with_their_class(clip) -> None:  # noqa: ANN001
    q = TextEncoder(clip, templates=("a {}.",)).queries([["cat", " kitten "], ["dog"]])
    assert q.names == ("cat", "kitten", "dog")
    assert q.owner.tolist() == [0, 0, 1] and q.num_classes == 2
    assert q.embeddings.shape == (3, 32)
    with pytest.raises(ValueError, match="no name"):
        TextEncoder(clip, templates=("a {}.",)).queries([["cat"], [" "]])


def test_templates_need_a_placeholder(clip) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="{}"):
        TextEncoder(clip, templates=("a photo",))


def test_class_max_takes_each_class_best_name() -> None:
    probs = torch.tensor([[0.1, 0.6], [0.5, 0.1], [0.4, 0.3]])  # names x pixels
    out = class_max(probs, torch.tensor([0, 0, 1]), 2)
    assert torch.equal(out, torch.tensor([[0.5, 0.6], [0.4, 0.3]]))
    same = torch.rand(3, 4)
    assert class_max(same, torch.arange(3), 3) is same
