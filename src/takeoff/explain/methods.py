"""The explanation methods by key, with the names the JSON and the page show."""

METHODS = {
    "permutation": "Permutation importance",
    "treeshap": "TreeSHAP",
    "integrated_gradients": "Integrated Gradients",
    "occlusion": "Column occlusion",
}
