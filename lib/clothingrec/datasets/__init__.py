"""Dataset readers, one module per dataset, all returning the typed records of :mod:`.records`.

- :mod:`.deepfashion2` — DeepFashion2 (``{train,validation}/{image,annos}``), 13 garment categories.
- :mod:`.pennfudan` — Penn-Fudan pedestrians (``PNGImages``, ``PedMasks``, ``Annotation`` text files).
- :mod:`.ccp` — clothing-co-parsing pixel label maps → garment-group objects + a person silhouette.
- :mod:`.clothing_small` — clothing-dataset-small (classification).
- :mod:`.ccp_crops` — CCP garment crops labelled with clothing-small's classes (out-of-domain test set).

Converters to COCO / YOLO live in :mod:`clothingrec.convert`.
"""
from clothingrec.datasets.records import (  # noqa: F401
                                          ImageRecord,
                                          ImageSkipped,
                                          Issue,
                                          ObjectRecord,
                                          ReadResult,
                                          image_size,
)
