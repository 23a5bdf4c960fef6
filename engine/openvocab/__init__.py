"""Open-vocabulary photo segmentation on open_clip: type class names, get masks.

Training-free dense CLIP (this package's part A):

* :mod:`~engine.openvocab.clip_model` - :func:`load_clip` / :class:`ClipSpec` (open_clip name +
  pretrained tag from the local hub cache, a weights file, ``local-dir:``, or an explicit config
  with random weights), :func:`clip_from_catalog` (catalog name through the weights manager),
  :class:`ClipModel` (preprocessing, run-time position embeddings for any window size).
* :mod:`~engine.openvocab.strategies` - the last-block rules of NACLIP (default), SCLIP,
  ClearCLIP and MaskCLIP, and :func:`encode_dense` (patch embeddings plus optional raw taps of
  intermediate blocks, for trained heads).
* :mod:`~engine.openvocab.text` - :class:`TextEncoder`: 80 ImageNet templates or your own,
  synonyms, embeddings cached in memory and on disk.
* :mod:`~engine.openvocab.pipeline` - resize, batched sliding windows, overlap averaging,
  strip-wise labelling at photo resolution; :mod:`~engine.openvocab.pamr` refinement.
* :mod:`~engine.openvocab.predictor` - :class:`OpenVocabPredictor` (``set_image`` /
  ``predict`` / ``reset_image``) and :func:`segment_photo`.
* :mod:`~engine.openvocab.cli` - ``run_segment(args)`` behind ``maskwright segment`` for photos.

Submodules are imported explicitly (``from engine.openvocab.predictor import ...``); this
package module imports nothing, so ``import engine.openvocab`` stays cheap.
"""
