"""Upload -> private ingestion -> clause report -> downloadable files: what the UI, the CLI
and scripts call, so each of them gets the same checks and the same report."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..settings import Settings

from .analyzer import ClauseAnalyzer, Report
from .checklist import Checklist
from .export import markdown_to_pdf
from .render import report_markdown
from .upload import Documents, accept_upload, ingest_upload


@dataclass
class Analysis:
    report: Report
    markdown: str
    doc_id: str


class DocumentService:
    """Built by the composition root (``Runtime.document_service``): ``documents`` stores
    the upload, ``analyzer`` reports on it."""

    def __init__(self, settings: Settings, checklist: Checklist, *, documents: Documents, analyzer: ClauseAnalyzer):
        self.settings, self.checklist = settings, checklist
        self.documents, self.analyzer = documents, analyzer

    def analyse_upload(self, path: Path, principal: str,
                       progress: Callable[[float, str], None] | None = None) -> Analysis:
        """Raises ``UploadError`` (nothing stored) for a file that cannot be analysed."""
        doc = accept_upload(self.settings, self.checklist, Path(path))
        doc_id = ingest_upload(self.documents, principal, Path(path), doc)
        report = self.analyzer.analyse(doc_id, doc.title, doc.text, principal=principal, pages=doc.pages,
                                       progress=progress)
        return Analysis(report, report_markdown(report), doc_id)

    @staticmethod
    def write_files(analysis: Analysis, out_dir: Path) -> list[Path]:
        """The report as Markdown and PDF, named after the document."""
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^\w.-]+", "-", Path(analysis.doc_id).stem).strip("-") or "document"
        md = out_dir / f"clause-report-{stem}.md"
        pdf = out_dir / f"clause-report-{stem}.pdf"
        md.write_text(analysis.markdown, encoding="utf-8")
        pdf.write_bytes(markdown_to_pdf(analysis.markdown))
        return [md, pdf]
