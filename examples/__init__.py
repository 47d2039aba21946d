"""Example workflows, served by default (``SIGNOFF_WORKFLOWS=examples.pipelines:workflows``)."""
