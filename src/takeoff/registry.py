"""Model families by name.

Adding a family: write ``models/<name>.py`` (the class and its ``Params``) and its test, then
add one line to ``FAMILIES``. Entries are import paths, so nothing heavy is imported until a
family is used.
"""

from __future__ import annotations

from importlib import import_module

from takeoff.errors import UnknownNameError

FAMILIES: dict[str, str] = {
    "lightgbm": "takeoff.models.lightgbm:LightGBMFamily",
    "mlp": "takeoff.models.mlp:MLPFamily",
    "tfidf": "takeoff.models.tfidf:TfidfFamily",
    "text-embed": "takeoff.models.text_embed:TextEmbedFamily",
    "text-finetune": "takeoff.models.text_finetune:TextFinetuneFamily",
    "image-cnn": "takeoff.models.image_cnn:ImageCNNFamily",
    "image-finetune": "takeoff.models.image_finetune:ImageFinetuneFamily",
}

# What `auto` tries, in order (the cheapest first, so a tiny budget still yields a model).
AUTO = ("lightgbm", "mlp", "tfidf", "text-embed")
# What `auto` tries on a table with an image column (these fuse the other columns too).
IMAGE_AUTO = ("image-cnn", "image-finetune")

# Recommenders (task "recommend"), same rules: one file in models/ and one line here.
RECOMMENDERS: dict[str, str] = {
    "popular": "takeoff.models.popular:PopularRecommender",
    "itemknn": "takeoff.models.itemknn:ItemKNNRecommender",
    "als": "takeoff.models.als:ALSRecommender",
    "two-tower": "takeoff.models.two_tower:TwoTowerRecommender",
}
AUTO_RECOMMEND = ("popular", "itemknn", "als", "two-tower")


def names() -> list[str]:
    """Registered family names."""
    return list(FAMILIES)


def get_recommender(name: str):
    """The recommender class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid names).
    """
    if name not in RECOMMENDERS:
        raise UnknownNameError("recommender family", name, [*RECOMMENDERS, "auto"])
    module, _, attr = RECOMMENDERS[name].partition(":")
    return getattr(import_module(module), attr)


def get(name: str):
    """The family class registered as ``name``.

    Raises:
        UnknownNameError: ``name`` is not registered (lists the valid names).
    """
    if name not in FAMILIES:
        raise UnknownNameError("model family", name, [*FAMILIES, "auto"])
    module, _, attr = FAMILIES[name].partition(":")
    return getattr(import_module(module), attr)
