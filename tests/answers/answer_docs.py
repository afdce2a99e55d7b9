"""Documents for the grounded-answers tests: a Markdown guide, an HTML page, a text file and a
small PDF written by hand."""

from __future__ import annotations

from pathlib import Path

INSTALL_MD = """# Installing

Two ways:

## From a .deb file

Download the package file and run `sudo dpkg -i package.deb`. Missing dependencies are then
installed with `sudo apt-get -f install`.

## From the repository

Add the repository to your APT sources and run `sudo apt install takeoff`.
"""

REFUNDS_HTML = """<!doctype html><html><head><title>Billing</title><style>h2 { color: red }</style>
<script>var secret = "never indexed";</script></head><body>
<nav><a href="/">Home</a> <a href="/billing">Billing menu</a></nav>
<div class="toc"><h2>Contents</h2><ul><li>Refunds</li></ul></div>
<h1>Billing</h1>
<h2>Refunds</h2>
<p>Refunds are possible within thirty days of delivery if the item is unused.</p>
<p>Write to the billing team with your order number to get your money back.</p>
<h2>Invoices</h2>
<p>Invoices are sent by email the day an order ships; older ones are on the orders page.</p>
<pre>
  order  date
  1234   2024-01-02
</pre>
</body></html>"""

SHIPPING_TXT = """Shipping
========

Parcels leave our warehouse within two working days. The tracking number arrives by email.

Lost parcels
------------

A parcel that has not arrived after ten working days is replaced free of charge: write to us with the tracking number.
"""


def write_pdf(path: Path, pages: list[list[str]], outline: list[tuple[str, int]] = ()) -> Path:
    """A small real PDF: each page's lines drawn in Helvetica, optional bookmarks (title, page index)."""
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    kids = []
    for i, lines in enumerate(pages):
        page, content = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page} 0 R")
        body = " T* ".join(f"({line})Tj" for line in lines)
        stream = f"BT /F1 12 Tf 16 TL 72 720 Td {body} ET".encode()
        objects[page] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
                         "/Resources << /Font << /F1 3 0 R >> >> >>").encode()
        objects[content] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in sorted(objects))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    if outline:
        from pypdf import PdfReader, PdfWriter

        writer = PdfWriter(clone_from=PdfReader(str(path)))
        for title, page in outline:
            writer.add_outline_item(title=title, page_number=page)
        with open(path, "wb") as handle:
            writer.write(handle)
    return path
