"""The File menu."""

from __future__ import annotations

from desktop.actions import Action

EXPORT_FORMATS = (("coco", "COCO JSON"), ("voc", "Pascal VOC"), ("yolo", "YOLO segmentation"),
                  ("png", "PNG masks"), ("nifti", "NIfTI"), ("dicom_seg", "DICOM SEG"))

ACTIONS: list[Action] = [
    Action("maskwright.file.new_project", "&New project…", lambda w: w.new_project_dialog(), "Ctrl+N", "File",
           "fa5s.folder-plus"),
    Action("maskwright.file.open_project", "&Open project…", lambda w: w.open_project_dialog(), "Ctrl+O", "File",
           "fa5s.folder-open", toolbar=True),
    Action("maskwright.file.open_sample", "Open the &sample project", lambda w: w.open_sample(), "", "File",
           "fa5s.flask"),
    Action("maskwright.file.add_files", "Add &photos or volumes…", lambda w: w.add_files_dialog(), "Ctrl+Shift+O",
           "File", "fa5s.file-image", toolbar=True),
    Action("maskwright.file.add_folder", "Add a &folder (photos or DICOM)…", lambda w: w.add_folder_dialog(), "",
           "File", "fa5s.folder"),
    Action("maskwright.file.save", "&Save", lambda w: w.save(), "Ctrl+S", "File", "fa5s.save", toolbar=True),
    *[Action(f"maskwright.file.export_{key}", f"Export {title}…", lambda w, k=key: w.export_dialog(k), "", "File")
      for key, title in EXPORT_FORMATS],
    Action("maskwright.file.close_project", "&Close project", lambda w: w.close_project(), "", "File"),
    Action("maskwright.file.quit", "&Quit", lambda w: w.close(), "Ctrl+Q", "File"),
]
