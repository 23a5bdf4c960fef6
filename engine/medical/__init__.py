"""Medical segmentation with MCANet (MSCAN backbone + multi-scale cross-axis attention head).

Modules: :mod:`~engine.medical.mscan` (backbone), :mod:`~engine.medical.mca_head` (decode head),
:mod:`~engine.medical.mcanet` (assembly, T/S/B variants, official checkpoint loading),
:mod:`~engine.medical.fast` (fused inference network), :mod:`~engine.medical.checkpoint`
(safetensors + JSON metadata), :mod:`~engine.medical.preprocess` (window, resample, 2.5D, tiles),
:mod:`~engine.medical.infer` (``segment(volume_or_photo, checkpoint)``), :mod:`~engine.medical.cli`
and :mod:`~engine.medical.catalog_entries` (the ``mcanet`` catalog loader).
"""
