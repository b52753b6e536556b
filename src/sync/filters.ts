/** Which files a sync selects: include globs minus exclude globs, matched on NFC relative paths. */
import picomatch from "picomatch";

export type FileFilter = (path: string) => boolean;

export function fileFilter(include: readonly string[], exclude: readonly string[]): FileFilter {
  // Everything (the default): a listed path never holds the "." or ".." that `**` leaves out.
  if (exclude.length === 0 && include.includes("**")) return () => true;
  const options = { dot: true };
  const included = picomatch([...include], options);
  const excluded = exclude.length > 0 ? picomatch([...exclude], options) : () => false;
  return (path) => {
    // Globs never match a line break (`**` would drop "a\nb.log" unseen): match a stand-in instead,
    // so such a name is selected and then reported where a target cannot take it.
    const nfc = path.normalize("NFC").replace(/[\r\n]/g, "\uFFFD");
    return included(nfc) && !excluded(nfc);
  };
}
