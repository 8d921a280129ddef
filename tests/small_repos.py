"""Small repositories in three languages, written by the tests: documented functions in Python (docstrings),
Go (``//`` doc comments) and C (``/** */`` comments with Doxygen tags), plus undocumented ones and a
licence header that is not a doc. Each function has its own purpose, so retrieval over them is real."""

from __future__ import annotations

from pathlib import Path

#: (summary, snake_name, body idea): one per function; phrased as a developer would document them.
PURPOSES = [
    ("Parse the configuration file and return the settings as a mapping", "parse_config", "config"),
    ("Compute the checksum of a byte buffer with the Adler-32 algorithm", "adler_checksum", "checksum"),
    ("Open a TCP connection to the server and send a heartbeat message", "send_heartbeat", "socket"),
    ("Resize an image to fit inside the given bounding box", "fit_image", "image"),
    ("Merge two sorted lists of integers into one sorted list", "merge_sorted", "merge"),
    ("Escape HTML special characters in a user supplied string", "escape_html", "escape"),
    ("Retry a failing request with exponential backoff and jitter", "retry_backoff", "retry"),
    ("Convert a temperature from degrees Celsius to Fahrenheit", "celsius_to_fahrenheit", "temperature"),
    ("Count the words in a text file, ignoring punctuation", "count_words", "words"),
    ("Validate an email address against a simple pattern", "validate_email", "email"),
    ("Read a CSV file and return the rows as dictionaries", "read_csv_rows", "csv"),
    ("Compute the median of a list of floating point numbers", "median_of", "median"),
    ("Format a duration in seconds as hours, minutes and seconds", "format_duration", "duration"),
    ("Generate a random password of the requested length", "random_password", "password"),
    ("Compress a directory into a zip archive", "zip_directory", "zip"),
    ("Find the shortest path between two nodes of a weighted graph", "shortest_path", "graph"),
    ("Cache the results of an expensive function in memory", "memoize", "cache"),
    ("Split a long string into lines no wider than a limit", "wrap_text", "wrap"),
    ("Compute the greatest common divisor of two integers", "gcd_of", "gcd"),
    ("Parse an ISO 8601 timestamp into a date and a time", "parse_timestamp", "timestamp"),
    ("Upload a file to the object store and return its URL", "upload_object", "upload"),
    ("Normalize a filesystem path and resolve dot segments", "normalize_path", "path"),
    ("Check whether a number is prime using trial division", "is_prime", "prime"),
    ("Rotate the log file when it grows beyond the size limit", "rotate_log", "log"),
    ("Encode binary data as a base64 string", "to_base64", "base64"),
    ("Compute the Levenshtein distance between two strings", "edit_distance", "distance"),
    ("Flatten a nested list into a single list", "flatten_list", "flatten"),
    ("Throttle calls so that at most N happen per second", "rate_limit", "throttle"),
    ("Load environment variables from a dotenv file", "load_dotenv", "dotenv"),
    ("Transpose a matrix given as a list of rows", "transpose", "matrix"),
]

#: Each file serves one part of an imaginary product; its functions say so in their docs.
PARTS = ["billing service", "job scheduler", "web frontend", "storage layer", "metrics exporter", "login flow",
         "search backend", "mobile client", "report builder", "mail gateway"]
LICENCE = "Copyright (c) 2024 Example Corp. Licensed under the Apache License, Version 2.0."


def _python(name: str, summary: str, idea: str, documented: bool) -> str:
    doc = f'    """{summary}.\n\n    Args:\n        value: the input.\n    """\n' if documented else ""
    return (f"def {name}(value, limit=10):\n{doc}"
            f"    {idea}_state = prepare_{idea}(value)\n"
            f"    for step in range(limit):\n"
            f"        {idea}_state = advance_{idea}({idea}_state, step)\n"
            f"        if finished_{idea}({idea}_state):\n"
            f"            break\n"
            f"    return finish_{idea}({idea}_state)\n")


def _go(name: str, summary: str, idea: str, documented: bool) -> str:
    camel = "".join(part.title() for part in name.split("_"))
    doc = f"// {camel} does this: {summary[0].lower() + summary[1:]}.\n// It returns an error on bad input.\n" \
        if documented else ""
    return (f"{doc}func {camel}(value string, limit int) (string, error) {{\n"
            f"\t{idea}State := prepare{idea.title()}(value)\n"
            f"\tfor step := 0; step < limit; step++ {{\n"
            f"\t\t{idea}State = advance{idea.title()}({idea}State, step)\n"
            f"\t\tif finished{idea.title()}({idea}State) {{\n"
            f"\t\t\tbreak\n\t\t}}\n\t}}\n"
            f"\treturn finish{idea.title()}({idea}State), nil\n}}\n")


def _c(name: str, summary: str, idea: str, documented: bool) -> str:
    doc = f"/**\n * @brief {summary}.\n * @param value the input\n * @return 0 on success\n */\n" if documented else ""
    return (f"{doc}int {name}(const char *value, int limit) {{\n"
            f"    struct {idea}_state s = prepare_{idea}(value);\n"
            f"    for (int step = 0; step < limit; step++) {{\n"
            f"        advance_{idea}(&s, step);\n"
            f"        if (finished_{idea}(&s)) break;\n    }}\n"
            f"    return finish_{idea}(&s);\n}}\n")


WRITERS = {"Python": (".py", _python, "# "), "Go": (".go", _go, "// "), "C": (".c", _c, "// ")}


def write_repository(root: Path, languages: tuple[str, ...] = ("Python", "Go", "C"), files_per_language: int = 6,
                     documented: bool = True) -> Path:
    """``root`` with ``files_per_language`` files per language, five functions each (four documented and
    one not, unless ``documented`` is False); every file starts with a licence header."""
    root.mkdir(parents=True, exist_ok=True)
    for offset, language in enumerate(languages):
        suffix, write, comment = WRITERS[language]
        for number in range(files_per_language):
            parts = [comment + LICENCE + "\n"]
            if language == "Go":
                parts.insert(0, "package tools\n\n")
            for slot in range(5):
                summary, name, idea = PURPOSES[(number * 5 + slot + offset * 7) % len(PURPOSES)]
                summary = f"{summary} for the {PARTS[number % len(PARTS)]}"
                parts.append(write(f"{name}_{number}{slot}", summary, f"{idea}{number}{slot}",
                                   documented and slot != 4))
            (root / f"{language.lower()}_module_{number}{suffix}").write_text("\n".join(parts), encoding="utf-8")
    return root


def java_class(name: str, verbs: list[str], package: str = "java.util") -> str:
    """A Java class of one Javadoc-commented method per verb, as a JDK source file holds them."""
    methods = "\n".join(
        f"    /**\n     * {verb.capitalize()} the entries of the {name.lower()} table into a new buffer.\n"
        f"     * @param limit the most entries\n     */\n"
        f"    public int {verb}{name}(int limit) {{\n        int total = limit * {i + 2};\n"
        f"        return total + {verb}Count;\n    }}\n" for i, verb in enumerate(verbs))
    return f"package {package};\n\npublic class {name} {{\n{methods}}}\n"
