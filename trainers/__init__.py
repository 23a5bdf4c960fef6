"""Fine-tuning on a project's corrected labels: ``python -m trainers fit --project P --recipe R``.

* :mod:`trainers.loop`: the one training loop (:class:`~trainers.loop.Trainer`, a template method
  whose hooks the recipes fill in); :mod:`trainers.config`, :mod:`trainers.schedule`,
  :mod:`trainers.sampling`, :mod:`trainers.checkpoint`, :mod:`trainers.distributed`,
  :mod:`trainers.signals`, :mod:`trainers.metrics`, :mod:`trainers.events` are its parts.
* :mod:`trainers.data`, :mod:`trainers.augment`, :mod:`trainers.volumes`, :mod:`trainers.project`:
  corrected items to samples; publishing checkpoints into the project.
* Recipes: :mod:`trainers.mcanet` (volumes), :mod:`trainers.cascade` and :mod:`trainers.densevlm`
  (photos, on CLIP).
* :mod:`trainers.cli`: the command line; progress is JSON lines on stdout (:mod:`trainers.events`).

``trainers`` imports ``engine`` and never ``desktop`` or Qt; the engine never imports it.
"""
