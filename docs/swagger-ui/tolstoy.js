// Tolstoy's plugin for Swagger UI (loaded by src/http/documentation.ts):
// - examples that chain: the spec's examples name the ids of one story (organization, tool,
//   action, flow, execution); once this page has created one of them for real, every example and
//   code sample names the real one instead, so that the next "Execute" works as it stands;
// - the examples' http://localhost:3000 becomes the address this page is served from;
// - each operation's x-codeSamples, above its parameters.
(() => {
  const DEFAULT_ORIGIN = 'http://localhost:3000';
  // What an example names that the server makes up: ids, and API keys.
  const MADE_BY_SERVER = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|tsk_[A-Za-z0-9]{59})$/;

  function replaced(value, replacements) {
    if (typeof value === 'string') {
      return Object.entries(replacements).reduce((text, [from, to]) => text.split(from).join(to), value);
    }
    if (Array.isArray(value)) return value.map((item) => replaced(item, replacements));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaced(item, replacements)]));
    }
    return value;
  }

  function dereferenced(spec, node) {
    let current = node;
    while (current?.$ref) {
      current = current.$ref
        .slice(2)
        .split('/')
        .reduce((parent, key) => parent?.[key.replaceAll('~1', '/').replaceAll('~0', '~')], spec);
    }
    return current;
  }

  function exampleOf(spec, path, method, status) {
    const response = dereferenced(spec, spec.paths?.[path]?.[method]?.responses?.[String(status)]);
    const media = response?.content?.['application/json'];
    if (!media) return undefined;
    if (media.example !== undefined) return media.example;
    const first = Object.values(media.examples ?? {})[0];
    return dereferenced(spec, first)?.value;
  }

  // Each id or key of the example, paired with the real one in the same place of the answer.
  function madeUp(example, actual, found = {}) {
    if (typeof example === 'string') {
      if (typeof actual === 'string' && actual !== example && MADE_BY_SERVER.test(example)) found[example] = actual;
    } else if (example && typeof example === 'object' && actual && typeof actual === 'object') {
      for (const key of Object.keys(example)) madeUp(example[key], actual[key], found);
    }
    return found;
  }

  function codeSamples(React, samples) {
    return React.createElement(
      'div',
      { className: 'tolstoy-samples' },
      React.createElement('h4', null, 'Code samples'),
      samples.map((sample, index) =>
        React.createElement(
          'details',
          { key: sample.label ?? sample.lang, open: index === 0 },
          React.createElement('summary', null, sample.label ?? sample.lang),
          React.createElement('pre', null, React.createElement('code', null, sample.source)),
        ),
      ),
    );
  }

  window.TolstoyDocs = () => ({
    statePlugins: {
      spec: {
        wrapActions: {
          updateJsonSpec: (original) => (spec) =>
            original(window.location.origin === DEFAULT_ORIGIN ? spec : replaced(spec, { [DEFAULT_ORIGIN]: window.location.origin })),
          setResponse: (original, system) => (path, method, response) => {
            original(path, method, response);
            if (response.status < 200 || response.status > 299 || !response.body || typeof response.body !== 'object') return;
            const spec = system.specSelectors.specJson().toJS();
            const found = madeUp(exampleOf(spec, path, String(method).toLowerCase(), response.status), response.body);
            if (Object.keys(found).length > 0) system.specActions.updateJsonSpec(replaced(spec, found));
          },
        },
      },
    },
    wrapComponents: {
      parameters: (Original, system) => (props) => {
        const samples = props.operation?.get?.('x-codeSamples');
        const parameters = system.React.createElement(Original, props);
        if (!samples?.size) return parameters;
        return system.React.createElement('div', null, codeSamples(system.React, samples.toJS()), parameters);
      },
    },
  });
})();
