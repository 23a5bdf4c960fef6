"""Model work from the window: pre-annotation, review, interpolation, "next to correct", export,
training and models dialogs, shortcuts. A mixin of :class:`~desktop.main_window.MainWindow`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from desktop.loading import read_item_source
from desktop.predictors import Prediction, PredictorFactory, make_predictor
from engine.edit import accept_class, interpolate_slices, rank_by_uncertainty, reject_class
from engine.errors import ModelError
from engine.items import Volume
from engine.jobs import CancelToken, Progress, check_cancelled

if TYPE_CHECKING:
    from desktop.main_window import MainWindow as _Base
else:
    _Base = object

__all__ = ["ModelFlows"]

_logger = logging.getLogger(__name__)

_EXPORT_NAMES = {"coco": "coco", "voc": "voc", "yolo": "yolo", "png": "png", "nifti": "nifti",
                 "dicom_seg": "dicom-seg"}


class ModelFlows(_Base):
    """Model and export flows for the main window."""

    predictor_factory: PredictorFactory = staticmethod(make_predictor)  # type: ignore[assignment]

    def init_model_flows(self) -> None:
        self.training = None
        self.show_device()

    def stop_model_flows(self) -> None:
        if self.training is not None:
            self.training.stop()

    def show_device(self) -> None:
        """Put the device models run on in the status bar (GPU name or CPU).

        Asking torch takes seconds (its import), so a worker does it while the window is usable.
        """
        pref = str(self.settings.get("device", "auto"))
        self.status.show_device(f"{pref} (checking…)")

        def detect(progress: Progress, cancel: CancelToken) -> str:
            from engine.models.device import choose_device

            try:
                return choose_device(pref).name
            except ValueError as err:
                return f"unavailable: {err}"

        self.jobs.submit("Checking the GPU", detect, on_done=self.status.show_device)

    def model_config(self, kind: str) -> dict:
        """What the next pre-annotation of ``kind`` items uses (read at each run: new checkpoints apply at once).

        The settings name the model and the weights folder (``weights_root``, the one the Models
        dialog shows); the project's active checkpoint of that model (set by the
        training dialog, or rolled back with ``maskwright``'s CLI) wins over the remembered file.
        """
        cfg = dict(self.settings.get(f"model.{kind}", {}), device=self.settings.get("device", "auto"))
        root = self.settings.get("weights_root")  # the Models dialog's folder; None: weights.default_root()
        cfg["weights_root"] = str(root) if root else None
        project = self.document.project
        if project is not None:
            # trainers name checkpoints mcanet.<variant>, cascade-clip.<backbone>, densevlm.<backbone>
            families = ("mcanet",) if kind == "volume" else ("cascade-clip", "densevlm")
            try:
                active = [c for c in project.checkpoints() if c.active and
                          (c.model == cfg.get("model") or c.model.startswith(families))]
            except Exception as err:  # noqa: BLE001 - fall back to the settings
                _logger.warning("reading the project's checkpoints: %s", err)
                active = []
            if active:
                cfg["checkpoint"] = str(active[-1].path)
                if kind == "volume":
                    cfg["model"] = active[-1].model
        return cfg

    # -- pre-annotation ----------------------------------------------------------------------
    def preannotate(self, scope: str) -> None:
        """Pre-annotate the current item, the selected ones, or all, in the model lane."""
        d = self.document
        if d.project is None:
            raise ModelError("open a project first")
        if not len(d.labels):
            raise ModelError("type the class names first (Classes panel)")
        if scope == "current":
            ids = [d.record.id] if d.record is not None else []
        elif scope == "selection":
            ids = self.browser.selected_ids()
        else:
            ids = [r.id for r in d.items()]
        if not ids:
            raise ModelError("no item to pre-annotate")
        d.save()
        labels = d.labels
        project = d.project
        for item_id in ids:
            record = project.item(item_id)
            predictor = self.predictor_factory(record.kind, self.model_config(record.kind))
            source = d.source if d.record is not None and d.record.id == item_id else None

            def run(progress: Progress, cancel: CancelToken, record=record, predictor=predictor,
                    source=source) -> tuple[int, Prediction, str, str]:
                item = source if source is not None else read_item_source(record, cancel=cancel)
                check_cancelled(cancel)
                pred = predictor.predict(item, labels, progress=progress, cancel=cancel)
                return record.id, pred, predictor.name, predictor.checkpoint

            self.jobs.submit(f"Pre-annotating {record.name}", run, lane="model",
                             on_done=lambda result, project=project: self._store_prediction(result, project))

    def _store_prediction(self, result: tuple[int, Prediction, str, str], project: object) -> None:
        item_id, pred, name, checkpoint = result
        if self.document.project is not project:  # the project was closed meanwhile: nothing to store into
            self.notifier.info(f"A pre-annotation of item {item_id} finished after its project was closed; "
                               "it was not saved.")
            return
        labels = pred.labels.astype(self.document.labels.dtype(), copy=False)
        self.document.store_prediction(item_id, labels, model=name, checkpoint=checkpoint,
                                       uncertainty=pred.uncertainty)
        if self.document.record is not None and self.document.record.id == item_id:
            self._show_item()
        self.notifier.info(f"Pre-annotated item {item_id} with {name}.")

    def next_to_correct(self) -> None:
        """Open the most uncertain item that is not yet corrected or approved."""
        d = self.document
        done = {r.id for r in d.items() if r.status in ("corrected", "approved")}
        ranked = rank_by_uncertainty(d.scores, skip=done)
        if not ranked:
            waiting = [r.id for r in d.items() if r.status in ("new", "predicted")]
            if not waiting:
                self.notifier.info("Every item is corrected or approved.")
                return
            ranked = waiting
        current = d.record.id if d.record is not None else None
        target = next((i for i in ranked if i != current), ranked[0])
        self.load_item(target)

    # -- review and interpolation ------------------------------------------------------------
    def review_class(self, accept: bool) -> None:
        """Accept or reject the model's prediction for the active class on the shown item."""
        d = self.document
        if d.editor is None or d.prediction is None:
            raise ModelError("this item has no prediction to review")
        cid = d.active_class
        pred = d.prediction
        text = f"{'Accept' if accept else 'Reject'} {d.labels[cid].name}"
        d.apply(text, (lambda ed: accept_class(ed, pred, cid)) if accept else (lambda ed: reject_class(ed, pred, cid)))

    def interpolate(self) -> None:
        """Fill the slices between annotated slices of the active class, along the focused view's axis
        (axial when no view has focus)."""
        d = self.document
        if d.editor is None or not isinstance(d.source, Volume):
            raise ModelError("interpolation needs a volume")
        axis = next((v.axis for v in self.volume_view.views if v.canvas.hasFocus()), 0)  # the view in use
        cid = d.active_class
        changed = 0

        def run(ed) -> None:  # noqa: ANN001 - LabelEditor
            nonlocal changed
            changed = interpolate_slices(ed, cid, axis=axis)

        d.apply("Interpolate", run)
        self.notifier.info(f"Interpolated {changed} slice(s)." if changed else
                           "Nothing to interpolate: annotate at least two slices with a gap between them.")

    def threshold_volume(self) -> None:
        """Give the active class to every unlabelled voxel in the wand's range (e.g. bone 300..3000 HU)."""
        from engine.edit import threshold_fill

        d = self.document
        if d.editor is None or not isinstance(d.source, Volume):
            raise ModelError("thresholding the whole volume needs a volume")
        o = self.tools.options
        array, cid = d.source.array, d.active_class
        d.apply("Threshold", lambda ed: threshold_fill(ed, array, low=o.wand_low, high=o.wand_high, value=cid))

    # -- export ------------------------------------------------------------------------------
    def ask_export_path(self, fmt: str, volume: bool) -> Path | None:
        """Where to export (tests replace this method)."""
        if volume:
            suffix = ".nii.gz" if fmt == "nifti" else ".dcm"
            path, _ = QFileDialog.getSaveFileName(self, "Export", f"labels{suffix}")
        else:
            path = QFileDialog.getExistingDirectory(self, "Export into folder")
        return Path(path) if path else None

    def export_dialog(self, key: str) -> None:
        """Export in a worker: the shown volume (NIfTI, DICOM SEG) or every photo with a mask."""
        from engine.io.export import FORMATS, PhotoExportEntry, export_photos, export_volume

        d = self.document
        if d.project is None:
            raise ModelError("open a project first")
        fmt = _EXPORT_NAMES[key]
        spec = FORMATS.get(fmt)
        d.save()
        labels = d.labels
        if spec.kind == "volume":
            if not isinstance(d.source, Volume) or d.editor is None:
                raise ModelError(f"{fmt} exports a volume: open one first")
            out = self.ask_export_path(fmt, True)
            if out is None:
                return
            volume, data = d.source, d.editor.data.copy()
            self.jobs.submit(f"Exporting {fmt}", lambda p, c: export_volume(fmt, out, volume, data, labels, progress=p,
                                                                            cancel=c), on_done=self._exported)
            return
        out = self.ask_export_path(fmt, False)
        if out is None:
            return
        project = d.project
        records = [r for r in project.items() if r.kind == "photo"]

        def run(progress: Progress, cancel: CancelToken):  # noqa: ANN202 - ExportResult
            entries = []
            for r in records:
                check_cancelled(cancel)
                latest = project.latest_version(r.id)
                data = project.load_annotation(r.id).data if latest is not None else None
                entries.append(PhotoExportEntry(Path(r.source).name, (r.shape[0], r.shape[1]), data))
            return export_photos(fmt, out, entries, labels, progress=progress, cancel=cancel)

        self.jobs.submit(f"Exporting {fmt}", run, on_done=self._exported)

    def _exported(self, result) -> None:  # noqa: ANN001 - ExportResult
        files = list(getattr(result, "files", []))
        self.last_export = result
        self.notifier.info(f"Exported {len(files)} file(s)" + (f" to {Path(files[0]).parent}" if files else "."))

    # -- dialogs -----------------------------------------------------------------------------
    def training_dialog(self) -> None:
        from desktop.training_dialog import TrainingDialog

        if self.document.project is None:
            raise ModelError("open a project first")
        self.document.save()
        if self.training is None:
            self.training = TrainingDialog(self)
        self.training.show()
        self.training.raise_()

    def models_dialog(self) -> None:
        from desktop.models_dialog import ModelsDialog

        dialog = getattr(self, "_models", None) or ModelsDialog(self)
        self._models = dialog
        dialog.show()
        dialog.raise_()

    def shortcuts_dialog(self) -> None:
        from desktop.shortcuts_dialog import ShortcutsDialog

        ShortcutsDialog(self).open()

    def activate_checkpoint(self, kind: str, path: Path, model: str, record: dict | None = None) -> None:
        """Make a checkpoint the one the next pre-annotation of ``kind`` items uses (no restart).

        It is recorded in the project (when the trainer could not, because this window holds the
        writer lock) and made active there, and remembered in the settings.
        """
        record = dict(record or {})
        description = Path(path).with_suffix(".json")  # the trainer's record beside the weights
        if description.is_file():
            import json

            try:
                record = {**json.loads(description.read_text(encoding="utf-8")), **record}
            except (OSError, ValueError) as err:
                _logger.warning("%s: unreadable checkpoint description (%s)", description, err)
        model = str(record.get("model") or model)
        project = self.document.project
        if project is not None and Path(path).is_file():
            try:
                known = next((c for c in project.checkpoints() if Path(c.path).resolve() == Path(path).resolve()),
                             None)
                if known is None:
                    parent = record.get("parent_id")
                    known = project.add_checkpoint(path, model=model, metrics=dict(record.get("metrics") or {}),
                                                   parent_id=int(parent) if parent is not None else None,
                                                   active=True)
                else:
                    project.set_active_checkpoint(known.id)
            except Exception as err:  # noqa: BLE001 - the settings below still make it active
                self.notifier.error(err, context="Recording the checkpoint in the project")
        cfg = dict(self.settings.get(f"model.{kind}", {}))
        cfg.update(checkpoint=str(path), model=model)
        self.settings.set(f"model.{kind}", cfg)
        self.settings.save()
        self.notifier.info(f"Now using checkpoint {Path(path).name} for {kind}s.")
