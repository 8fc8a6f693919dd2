"""Tables, figures, CONSORT diagram and the HTML report."""
