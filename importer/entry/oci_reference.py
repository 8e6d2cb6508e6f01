"""`oci://` in front of a reference, as Helm writes chart references (`helm pull oci://host/charts/shop --version 1`).

    strip_oci_scheme("oci://127.0.0.1:5000/charts/shop:1.0.0")   # "127.0.0.1:5000/charts/shop:1.0.0"
    strip_oci_scheme("127.0.0.1:5000/team/app:1")                # unchanged

Helm takes the scheme off and reads the rest as a registry reference; `check` and `chart-images` do the same, for
charts and images alike (an image is as much an OCI artifact as a chart). Only the exact prefix `oci://` is a
scheme, as for Helm; `oci://` with nothing after it is left for the reference grammar to refuse.
"""

from __future__ import annotations

OCI_SCHEME = "oci://"


def strip_oci_scheme(text: str) -> str:
    """`text` without a leading `oci://`."""
    return text.removeprefix(OCI_SCHEME)
