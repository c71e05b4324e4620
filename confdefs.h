/* confdefs.h */
#define PACKAGE_NAME "advex"
#define PACKAGE_TARNAME "advex"
#define PACKAGE_VERSION "0.1.0"
#define PACKAGE_STRING "advex 0.1.0"
#define PACKAGE_BUGREPORT ""
#define PACKAGE_URL ""
#define PACKAGE "advex"
#define VERSION "0.1.0"
