/** Terminal colour: only on a terminal, and never when NO_COLOR is set. */
export const useColour = () => Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (useColour() ? `\u001b[${code}m${text}\u001b[0m` : text);
export const green = paint('32');
export const red = paint('31');
export const yellow = paint('33');
export const dim = paint('2');
export const bold = paint('1');

// eslint-disable-next-line no-control-regex
export const visibleLength = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
