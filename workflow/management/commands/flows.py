"""``manage.py flows``: the step graph, from the steps' own declarations.

manage.py flows                                  # every step, as text
manage.py flows --flow user-registration         # one flow
manage.py flows --flow user-registration --format mermaid   # or json, dot

Nodes are steps with their type; edges are topics from emitter to subscriber (virtual
ones marked), to and from steps of other flows too (named with their flow). An emit no
step subscribes to, and a subscription to a topic no step emits, are faults: drawn as
topic nodes and listed; an emit declared open with no subscriber is an open end, no fault.
"""

from django.core.management.base import BaseCommand, CommandError

from workflow.diagrams import RENDERERS, render
from workflow.graph import flow_graph
from workflow.registry import registry


class Command(BaseCommand):
    help = "Prints the step graph (or one flow's) as text, JSON, Mermaid or Graphviz dot."
    # The graph's faults are this command's output; a step module that cannot load is
    # named on stderr rather than stopping it.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--flow", help="only this flow's steps (default: every step)")
        parser.add_argument(
            "--format", choices=sorted(RENDERERS), default="text", help="default: text"
        )

    def handle(self, *args, flow, format, **options):
        known = registry.flows()
        if flow is not None and flow not in known:
            raise CommandError(
                f"no flow named {flow!r}; the flows are: {', '.join(known) or '(none)'}"
            )
        graph = flow_graph(registry, flow)
        if not graph.nodes:
            raise CommandError("no steps are registered (add <app>/steps/*_step.py modules)")
        self.stdout.write(render(graph, format))
        for problem in registry.problems:
            self.stderr.write(
                f"not in the graph: {problem.msg} ({problem.id}; see manage.py check)"
            )
