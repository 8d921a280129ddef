"""Real, offline training and evaluation data built from what is on the machine."""

from st_code.data.python_functions import PythonFunction, extract_functions, iter_python_files
from st_code.data.offline_pairs import OfflineData, build_offline_data, humaneval_retrieval

__all__ = [
    "PythonFunction", "extract_functions", "iter_python_files", "OfflineData", "build_offline_data",
    "humaneval_retrieval",
]
