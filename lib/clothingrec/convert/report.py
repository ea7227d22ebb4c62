"""Conversion report: what went in, what came out, and one row per skipped image, item or field."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from clothingrec.datasets.records import Issue

COLUMNS = ("split", "level", "file", "item", "field", "reason")


@dataclass
class ConversionReport:
    """Counts per split and the issues of a conversion.

    Invariants (checked by :meth:`check`): for every split, ``images_in == images_out +`` the number
    of image-level issues, and (where the readers counted them) ``items_in`` (objects in the
    annotations of the kept images) ``== annotations_out +`` the number of item-level issues.
    ``skipped`` holds every issue row: ``level`` is ``image`` (the whole image skipped), ``item`` (one
    object skipped: exactly one row per lost object) or ``field`` (object or image kept, one field
    dropped or changed: a polygon dropped, a box clipped...).
    """

    dataset: str = ""
    images_in: dict[str, int] = field(default_factory=dict)
    images_out: dict[str, int] = field(default_factory=dict)
    annotations_out: dict[str, int] = field(default_factory=dict)
    per_category: dict[str, dict[str, int]] = field(default_factory=dict)  # split → name → count
    skipped: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # dataset-level remarks (e.g. "no test split", "warning: ...")
    items_in: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------ accounting
    def add_split(self, split: str, images_in: int, images_out: int, annotations: int,
                  per_category: dict[str, int], issues: list[Issue], items_in: int | None = None) -> None:
        self.images_in[split] = images_in
        if items_in is not None:
            self.items_in[split] = items_in
        self.images_out[split] = images_out
        self.annotations_out[split] = annotations
        self.per_category[split] = dict(per_category)
        self.skipped.extend(Issue(i.file, i.item, i.field, i.reason, i.split or split, i.level) for i in issues)

    def images_skipped(self, split: str | None = None) -> int:
        return sum(1 for i in self.skipped if i.level == "image" and (split is None or i.split == split))

    def items_skipped(self, split: str | None = None) -> int:
        return sum(1 for i in self.skipped if i.level == "item" and (split is None or i.split == split))

    def check(self) -> None:
        """Raise AssertionError when images in ≠ images out + images reported, or items in ≠ items out
        + items reported, for some split."""
        for split, n_in in self.images_in.items():
            out, skipped = self.images_out.get(split, 0), self.images_skipped(split)
            if n_in != out + skipped:
                raise AssertionError(f"{self.dataset}/{split}: {n_in} images in, {out} out + {skipped} "
                                     "reported")
        for split, n_in in self.items_in.items():
            out, skipped = self.annotations_out.get(split, 0), self.items_skipped(split)
            if n_in != out + skipped:
                raise AssertionError(f"{self.dataset}/{split}: {n_in} items in, {out} out + {skipped} "
                                     "reported")

    # ------------------------------------------------------------ views
    def to_frame(self):
        """The skipped rows as a pandas DataFrame (columns split, level, file, item, field, reason)."""
        import pandas as pd

        return pd.DataFrame([{c: getattr(i, c) for c in COLUMNS} for i in self.skipped], columns=list(COLUMNS))

    def summary_frame(self):
        """One row per split: images in / out / skipped, annotations out, items and fields skipped."""
        import pandas as pd

        rows = []
        for split in self.images_in:
            levels = Counter(i.level for i in self.skipped if i.split == split)
            rows.append({"split": split, "images_in": self.images_in[split], "items_in": self.items_in.get(split),
                         "images_out": self.images_out.get(split, 0), "images_skipped": levels["image"],
                         "annotations_out": self.annotations_out.get(split, 0),
                         "items_skipped": levels["item"], "fields_dropped": levels["field"]})
        return pd.DataFrame(rows).set_index("split")

    def reasons(self):
        """Skipped rows counted by (level, field, reason kind): numbers in the reason become ``N``."""
        import re

        import pandas as pd

        def kind(reason: str) -> str:
            reason = re.sub(r"\(.*\)$", "", reason).strip() or reason  # drop exception details
            return re.sub(r"-?\d+(\.\d+)?", "N", reason)[:80]

        kinds = Counter((i.level, i.field.split("[")[0], kind(i.reason)) for i in self.skipped)
        return pd.DataFrame([{"level": lvl, "field": f, "reason": r, "count": n}
                             for (lvl, f, r), n in sorted(kinds.items())])

    def pretty(self, max_rows: int = 20) -> str:
        lines = [f"conversion report: {self.dataset}"] + [f"  note: {n}" for n in self.notes]
        for split in self.images_in:
            lines.append(f"  {split:<6} images in {self.images_in[split]:>7}, out {self.images_out.get(split, 0):>7}, "
                         f"skipped {self.images_skipped(split):>5}; annotations out "
                         f"{self.annotations_out.get(split, 0):>8}")
        lines.append(f"  {len(self.skipped)} issue rows "
                     f"({', '.join(f'{k}: {v}' for k, v in sorted(Counter(i.level for i in self.skipped).items()))})"
                     if self.skipped else "  no issues")
        for issue in self.skipped[:max_rows]:
            lines.append(f"    [{issue.split}] {issue}")
        if len(self.skipped) > max_rows:
            lines.append(f"    ... {len(self.skipped) - max_rows} more (report.csv)")
        return "\n".join(lines)

    __str__ = pretty

    def _repr_html_(self) -> str:
        return "<pre>" + self.pretty().replace("&", "&amp;").replace("<", "&lt;") + "</pre>"

    # ------------------------------------------------------------ files
    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "images_in": self.images_in, "images_out": self.images_out,
                "annotations_out": self.annotations_out, "per_category": self.per_category,
                "skipped": [i.as_dict() for i in self.skipped], "notes": list(self.notes),
                "items_in": self.items_in}

    def save(self, folder: str | Path) -> None:
        """Write ``report.json`` (everything), ``report.csv`` (skipped rows) and ``report.txt``."""
        import csv
        import io

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "report.json").write_text(json.dumps(self.as_dict(), indent=1, allow_nan=False) + "\n",
                                            encoding="utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in self.skipped:
            writer.writerow([getattr(i, c) for c in COLUMNS])
        (folder / "report.csv").write_text(buf.getvalue(), encoding="utf-8")
        (folder / "report.txt").write_text(self.pretty(max_rows=10**9) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> ConversionReport:
        data = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
        return cls(dataset=data["dataset"], images_in=data["images_in"], images_out=data["images_out"],
                   annotations_out=data["annotations_out"], per_category=data["per_category"],
                   skipped=[Issue(**row) for row in data["skipped"]], notes=list(data.get("notes", [])),
                   items_in=dict(data.get("items_in", {})))
