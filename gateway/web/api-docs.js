/*
 * api-docs.js: the API reference page (/api/docs). Swagger UI, vendored into /vendor/swagger-ui/
 * by make from npm, renders the gateway's own description, /api/openapi.json. A page of its own,
 * not part of the app: it only reads. "Try it out" is offered for GET calls only, which run with
 * the browser's session like the app's own calls.
 */
/* global SwaggerUIBundle */
'use strict';

(function () {
  const root = document.getElementById('api-docs');
  if (typeof SwaggerUIBundle !== 'function') {
    root.textContent = 'The API reference viewer is not installed (make vendors it). The description itself is at ';
    const a = document.createElement('a');
    a.href = '/api/openapi.json';
    a.textContent = '/api/openapi.json';
    root.appendChild(a);
    return;
  }
  SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#api-docs',
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    validatorUrl: null,
    supportedSubmitMethods: ['get'],
  });
})();
