/** Which files a sync selects: include globs minus exclude globs, matched on NFC relative paths. */
import picomatch from "picomatch";

export type FileFilter = (path: string) => boolean;

export function fileFilter(include: readonly string[], exclude: readonly string[]): FileFilter {
  const options = { dot: true };
  const included = picomatch([...include], options);
  const excluded = exclude.length > 0 ? picomatch([...exclude], options) : () => false;
  return (path) => {
    const nfc = path.normalize("NFC");
    return included(nfc) && !excluded(nfc);
  };
}
