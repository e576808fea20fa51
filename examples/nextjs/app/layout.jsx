import { ThorbisObs } from "./thorbis-obs";

export const metadata = { title: "Thorbis Business OS" };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body>
        <ThorbisObs />
        {children}
      </body>
    </html>
  );
}
