"""The CodeR paper's prompt templates (Tables 10, 11, 12, 17), filled from the task registry."""

from __future__ import annotations

from st_code.tasks import Task

#: Table 10: brainstorming new tasks for a major type, with seed tasks as examples.
BRAINSTORM = """Brainstorm a list of potentially useful code retrieval tasks for the following major task type: {major_type}.
Note:
- For each task, you should generate the task name and the corresponding task instruction.
- In the task instruction, you should specify what the query is, and what the desired documents are.
- Each task should cover a wide range of queries, and should not be too specific.
Here are a few examples for your reference:
{examples}
Your output should always be a list of JSON objects only, with about {count} elements. Each element should be a JSON object, containing the following fields:
- "task_name": the name of the task.
- "task_instruction": the instruction of the task.
Your output should start with "[" and end with "]". Remember do not explain your output or output anything else.
Your output:"""

#: Table 11: generating one side of a query-positive pair.
GENERATE = """{generation_instruction}
{input_type}:
```
{input_content}
```
Note:
- Your output must always be a string, only containing {output_content}.
- Your output should be independent of the given code, which means that it should not containing the pronouns such as "it", "this", "that", "the given", "the provided", etc.
Remember do not explain your output or output anything else.
Your output:"""

#: Table 12: annotating a query-positive pair; only answer "1" keeps it.
ANNOTATE = """Given a code retrieval task (Task), a query (Query), and a document (Document), your mission is to {annotation_instruction}.
Task ({major_type}): {task_instruction}
Query ({query_type}):
```
{query}
```
Document ({doc_type}):
```
{document}
```
Your output must be one of the following options:
- 0: The query or document does not match the major task type ({major_type}).
- 1: The query and document match the major task type ({major_type}). The judgment is: Yes.
- 2: The query and document match the major task type ({major_type}). The judgment is: No.
Do not explain your answer in the output. Your output must be a single number (0 or 1 or 2).
Your output:"""


#: CodeR section 3 "Instructing": an LLM drafts each brainstormed task's generation fields. The paper
#: shows no template for this step; this one asks for exactly the registry fields, with the paper's
#: own Code Summary Retrieval entry (Tables 13-16) as the worked example.
INSTRUCT = """You are designing a synthetic data generation recipe for a code retrieval task.
Task name: {task_name}
Major task type: {major_type}
Task instruction: {task_instruction}
In a generation step, a lightweight LLM is given a real piece of code in {{code_language}} and must write the other side of a (query, document) pair in the natural language {{language}}.
Write the recipe as a JSON object with these fields:
- "generation_instruction": what the LLM must generate from the code; use the placeholders {{code_language}} and {{language}}.
- "output_content": a short noun phrase naming what is generated, ending with "in {{language}}" when it is text.
- "annotation_instruction": what a judge must check about a (query, document) pair, starting with "judge whether".
- "query_type": what the query is, e.g. "the code".
- "doc_type": what the document is, e.g. "the text".
- "input_role": "positive" if the real code is the document, "query" if it is the query, "query_part" if it is part of the query.
Example for the task "Code Summary Retrieval":
{{"generation_instruction": "Given a piece of {{code_language}} code, generate a summary in {{language}} of the code.", "output_content": "the generated summary in {{language}}", "annotation_instruction": "judge whether the text summarizes the code", "query_type": "the code", "doc_type": "the text", "input_role": "query"}}
Your output must be the JSON object only.
Your output:"""


def instruct_prompt(task_name: str, major_type: str, task_instruction: str) -> str:
    return INSTRUCT.format(task_name=task_name, major_type=major_type, task_instruction=task_instruction)


def brainstorm_prompt(major_type: str, seeds: list[Task], count: int = 10) -> str:
    examples = "\n".join(
        f"- Example {i}:\nTask Name: {t.name}\nTask Instruction: {t.instruction}" for i, t in enumerate(seeds, 1)
    )
    return BRAINSTORM.format(major_type=major_type, examples=examples, count=count)


def generate_prompt(task: Task, step: int, input_content: str, input_type: str, **placeholders: str) -> str:
    """Table 11 for generation step ``step`` (0 or 1) of ``task``."""
    return GENERATE.format(
        generation_instruction=task.generation_instruction[step].format(**placeholders),
        input_type=input_type,
        input_content=input_content,
        output_content=task.output_content[step].format(**placeholders),
    )


def annotate_prompt(task: Task, query: str, document: str, **placeholders: str) -> str:
    return ANNOTATE.format(
        annotation_instruction=task.annotation_instruction, major_type=task.major_type,
        task_instruction=task.format_instruction(**placeholders), query_type=task.query_type,
        doc_type=task.doc_type, query=query, document=document,
    )
