"""Programmatic labeling: labeling functions vote on unlabeled texts (``functions``), a
label model combines their votes into labels (``model``), and ``analysis`` reports how
far each function and each model can be trusted."""
from .analysis import label_model_report, lf_summary, to_markdown
from .functions import (ABSTAIN, LabelingError, LabelingFunction, LabelingSet, heuristic_lf, keyword_lf,
                        load_labeling_set, model_lf, read_labeling_set, regex_lf, similarity_lf)
from .model import AccuracyWeighted, LabelModel, MajorityVote, as_votes

__all__ = ["ABSTAIN", "AccuracyWeighted", "LabelModel", "LabelingError", "LabelingFunction", "LabelingSet",
           "MajorityVote", "as_votes", "heuristic_lf", "keyword_lf", "label_model_report", "lf_summary",
           "load_labeling_set", "model_lf", "read_labeling_set", "regex_lf", "similarity_lf", "to_markdown"]
