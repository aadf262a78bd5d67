// placeholder, replaced by the CLI
console.log('haze');
