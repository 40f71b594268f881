"""What an error report may show of an API call: no secret, DEBUG or not.

Django's error page (DEBUG) and its mail to ``ADMINS`` show the local variables of
every frame and the request's POST data. Django hides what ``sensitive_variables`` and
``sensitive_post_parameters`` mark, but only with DEBUG off: with DEBUG on, a request
body, its ``Authorization`` header or the hash a serializer made of a password would
show in the page. The step views mark their variables holding the request (see
``views``) and set this filter on each request they serve, which keeps the marks in
DEBUG too; Django's own filter still applies to the rest of the project.
"""

from django.views.debug import SafeExceptionReporterFilter


class StepReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, active whatever DEBUG says: marked variables and the POST
    parameters of a step's request show as stars."""

    def is_active(self, request):
        return True
